//! `toc-backup cost`: the stack's monthly bill, today and at steady state.

use clap::Args;
use toc_sis_backup::cost::{Part, Prices, Schedule};
use toc_sis_backup::Error;

use super::{mib, print, store};
use crate::flags::StoreArg;

#[derive(Args)]
pub(crate) struct CostArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
    /// A JSON file with the prices to use instead of the built-in table (any of the fields of
    /// the `prices` object that `--json` prints).
    #[arg(long, env = "COST_PRICES_FILE", value_name = "FILE")]
    prices: Option<std::path::PathBuf>,
    /// The stack was deployed with ReplicationTimeControl=Disabled.
    #[arg(long)]
    no_replication_time_control: bool,
    /// The template's NetworkPath: vpc-endpoints (the stack's interface endpoints, billed per
    /// zone and hour) or existing-nat (none; the NAT bills the S3 traffic per GB).
    #[arg(long, value_name = "PATH", default_value = "vpc-endpoints", value_parser = ["vpc-endpoints", "existing-nat"])]
    network_path: String,
    /// Availability Zones of SubnetIds: each interface endpoint is billed once per zone.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=6))]
    availability_zones: u32,
    /// The stack was deployed with RestoreTestImageUri: the restore test runs as the ECS
    /// Fargate task (and, with vpc-endpoints, three more endpoints).
    #[arg(long, alias = "fargate")]
    restore_test_on_fargate: bool,
    /// What one run writes to CloudWatch Logs, Lambda's start and report records included.
    #[arg(long, value_name = "BYTES", default_value_t = toc_sis_backup::cost::bill::LOG_BYTES_PER_INVOCATION as u64)]
    log_bytes_per_run: u64,
}

pub(crate) async fn run(args: CostArgs) -> Result<(), Error> {
    let store = store(&args.store).await?;
    let prices = match &args.prices {
        Some(path) => Prices::from_file(path)?,
        None => Prices::default(),
    };
    let schedule = Schedule {
        replication_time_control: !args.no_replication_time_control,
        network_path: args.network_path.parse()?,
        availability_zones: args.availability_zones,
        restore_test_on_fargate: args.restore_test_on_fargate,
        log_bytes_per_invocation: args.log_bytes_per_run as f64,
        ..Default::default()
    };
    let estimate =
        toc_sis_backup::cost::estimate(store.as_ref(), chrono::Utc::now(), prices, schedule)
            .await?;
    print(args.json, &estimate, |e| {
        let mut text = vec![format!(
            "S3 storage today ({}): {:.2} USD/month",
            e.prices.region, e.today_usd_per_month
        )];
        text.push(format!(
            "\nthe monthly bill at steady state (7 years of daily fulls of {}, 90 days of hourly incrementals of {}{}), prices of {} ({}, {}):",
            mib(e.workload.full_bytes as u64),
            mib(e.workload.incremental_bytes as u64),
            if e.workload.binlog_bytes_per_day > 0.0 {
                format!(", the binlog archive at {} a day", mib(e.workload.binlog_bytes_per_day as u64))
            } else {
                String::new()
            },
            e.prices.read_on,
            e.prices.region,
            e.prices.replica_region
        ));
        let row = |item: &str, quantity: &str, unit: &str, price: &str, usd: &str| {
            format!("{item:<64} {quantity:>10} {unit:<16} {price:>10} {usd:>8}")
        };
        text.push(row("", "quantity", "unit", "USD a unit", "USD"));
        for (part, heading, subtotal) in [
            (
                Part::Data,
                "what grows with the backups".to_string(),
                e.steady_state.data_usd_per_month,
            ),
            (
                Part::Stack,
                format!("the stack as deployed ({})", e.schedule.deployment()),
                e.steady_state.stack_usd_per_month,
            ),
        ] {
            text.push(heading);
            for line in e.steady_state.lines.iter().filter(|l| l.part == part) {
                text.push(row(
                    &format!("  {}", line.item),
                    &figure(line.quantity, 1),
                    line.unit,
                    &figure(line.unit_usd, 2),
                    &format!("{:.2}", line.usd),
                ));
            }
            text.push(row("  subtotal", "", "", "", &format!("{subtotal:.2}")));
        }
        let total = format!("{:.2}", e.steady_state.usd_per_month);
        text.push(format!("{} USD/month", row("total", "", "", "", &total)));
        text.join("\n")
    });
    Ok(())
}

/// A bill's quantity or unit price: four significant digits, at least `decimals` (a price of
/// 0.0000133334 a GB-second must not print as 0.00), one above 10.
fn figure(value: f64, decimals: usize) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0".into();
    }
    if value.abs() >= 10.0 {
        let decimals = decimals.max(1);
        return format!("{value:.decimals$}");
    }
    let significant = (3 - value.abs().log10().floor() as i32).clamp(1, 12) as usize;
    let text = format!("{value:.significant$}");
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let fraction = fraction.trim_end_matches('0');
    format!("{whole}.{fraction:0<decimals$}")
}
