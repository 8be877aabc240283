//! `toc-backup setup-users`: the three project users, created or updated by the master user.

use toc_sis_backup::deploy::users::{
    accounts_from_stack_secrets, accounts_from_variables, missing_master_privileges,
    setup_statements, setup_users, Flavour, Role,
};
use toc_sis_backup::{mysql, Error};

use crate::args::SetupUsersArgs;

pub(crate) async fn run(args: SetupUsersArgs) -> Result<(), Error> {
    let url = args.connection.url().await?;
    let names = args.names.names();
    let mut roles: Vec<Role> = args.users.iter().map(|u| Role::from(*u)).collect();
    roles.dedup();
    let mut conn = mysql::connect(&url, None).await?;
    if args.print {
        let facts = toc_sis_backup::restore::preflight::server_facts(&mut conn).await?;
        let flavour = if facts.mariadb {
            Flavour::MariaDb
        } else {
            Flavour::MySql8
        };
        let named: Vec<(Role, String)> = roles.iter().map(|r| (*r, r.user().into())).collect();
        for line in missing_master_privileges(&facts.grants, &named, &names, flavour) {
            println!("-- {} lacks {line}", facts.current_user);
        }
        let plan: Vec<_> = named.iter().map(|(r, u)| (*r, u.clone(), None)).collect();
        for statement in setup_statements(&plan, &names, flavour) {
            println!("{};", statement.shown);
        }
        return Ok(());
    }
    let accounts = match &args.from_stack_secrets {
        Some(stack) => {
            let client =
                aws_sdk_secretsmanager::Client::new(&toc_sis_backup::aws::sdk_config().await);
            let (accounts, absent) = accounts_from_stack_secrets(&client, stack, &roles).await?;
            for secret in absent {
                eprintln!(
                    "skipped: secret {secret} does not exist (that part of the stack is not \
                     deployed, e.g. EnableBinlogArchive=false); run again once it is"
                );
            }
            accounts
        }
        None => accounts_from_variables(&roles, |name| std::env::var(name).ok())?,
    };
    let reports = setup_users(&mut conn, &accounts, &names).await?;
    crate::print(args.json, &reports, |reports| {
        reports
            .iter()
            .map(|r| {
                format!(
                    "{} {} (for the {}): {}",
                    if r.created { "created" } else { "updated" },
                    r.user,
                    r.jobs,
                    r.grants.join("; ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
