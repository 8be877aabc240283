//! `toc-backup setup-users`: the three project users, created or updated by the master user.

use toc_sis_backup::deploy::users::{
    accounts_from_stack_secrets, accounts_from_variables, printed_setup, setup_users, Role,
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
        for line in printed_setup(&mut conn, &roles, &names).await? {
            println!("{line}");
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
