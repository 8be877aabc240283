//! `toc-backup setup-users`: the three project users, created or updated by the master user.

use clap::{Args, ValueEnum};
use toc_sis_backup::deploy::users::{
    accounts_from_stack_secrets, accounts_from_variables, printed_setup, setup_users, Role,
};
use toc_sis_backup::{mysql, Error};

use super::print;
use crate::flags::{Connection, DeploymentNames};

#[derive(Args)]
pub(crate) struct SetupUsersArgs {
    /// The master user's connection: mysql://MASTER@HOST[:PORT]/ (its password in
    /// DATABASE_PASSWORD).
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    names: DeploymentNames,
    /// The users to set up.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [UserArg::Backup, UserArg::Binlog, UserArg::RestoreTest])]
    users: Vec<UserArg>,
    /// Take the user names and passwords from the secrets the stack generated
    /// (STACK/database/backup, STACK/database/binlog, STACK/database/restore-test) instead of
    /// TOC_BACKUP_PASSWORD, TOC_BINLOG_PASSWORD and TOC_RESTORE_TEST_PASSWORD.
    #[arg(long, value_name = "STACK")]
    from_stack_secrets: Option<String>,
    /// Print the SQL it would run (passwords as placeholders) and what the master user lacks
    /// for it, and change nothing.
    #[arg(long)]
    print: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UserArg {
    Backup,
    Binlog,
    RestoreTest,
}

impl From<UserArg> for toc_sis_backup::deploy::users::Role {
    fn from(user: UserArg) -> Self {
        use toc_sis_backup::deploy::users::Role;
        match user {
            UserArg::Backup => Role::Backup,
            UserArg::Binlog => Role::Binlog,
            UserArg::RestoreTest => Role::RestoreTest,
        }
    }
}

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
    print(args.json, &reports, |reports| {
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
