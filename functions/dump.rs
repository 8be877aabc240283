//! The `dump` Lambda function: a full backup of the TOC-SIS database into S3.

use toc_sis_backup::lambda::dump::DumpFunction;
use toc_sis_backup::lambda::{start, ProcessEnv};

fn main() -> std::process::ExitCode {
    toc_sis_backup::memory::configure_malloc(toc_sis_backup::memory::Workload::Other);
    serve()
}

#[tokio::main]
async fn serve() -> std::process::ExitCode {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = toc_sis_backup::aws::sdk_config().await;
    start(DumpFunction::from_env(&ProcessEnv, sdk_config)).await
}
