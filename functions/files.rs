//! The `files` Lambda function: daily snapshots of uploaded documents and the application tree.

use toc_sis_backup::lambda::files::FilesFunction;
use toc_sis_backup::lambda::{start, ProcessEnv};

fn main() -> std::process::ExitCode {
    toc_sis_backup::memory::configure_malloc(toc_sis_backup::memory::Workload::Other);
    serve()
}

#[tokio::main]
async fn serve() -> std::process::ExitCode {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    start(FilesFunction::from_env(&ProcessEnv, sdk_config)).await
}
