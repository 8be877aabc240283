//! The `restore-test` Lambda function: the monthly proof that the latest backup restores.

use toc_sis_backup::lambda::restore_test::RestoreTestFunction;
use toc_sis_backup::lambda::{start, ProcessEnv};

fn main() -> std::process::ExitCode {
    toc_sis_backup::memory::configure_malloc(toc_sis_backup::memory::Workload::Restore);
    serve()
}

#[tokio::main]
async fn serve() -> std::process::ExitCode {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    start(RestoreTestFunction::from_env(&ProcessEnv, sdk_config)).await
}
