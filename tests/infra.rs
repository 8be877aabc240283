//! The SAM templates agree with the code and the README: a function for every Lambda binary
//! and back, schedules that target functions, environment variables the code reads, and the
//! lifecycle the README's retention table promises.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn template(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("infra").join(name)).expect("template");
    serde_yaml::from_str(&text).expect("template YAML")
}

/// The name inside `!GetAtt Name.Arn` or `!Ref Name`.
fn target_name(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => tagged
            .value
            .as_str()
            .map(|s| s.split('.').next().unwrap_or(s).to_string()),
        _ => None,
    }
}

fn resources<'a>(template: &'a Value, kind: &str) -> BTreeMap<String, &'a Value> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap_or_default().to_string(), r))
        .collect()
}

fn lambda_binaries() -> BTreeSet<String> {
    let manifest: toml_like::Bins =
        toml_like::parse(&std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml"));
    manifest
        .into_iter()
        .filter(|name| name != "toc-backup")
        .collect()
}

/// Just enough of Cargo.toml: the `[[bin]]` names.
mod toml_like {
    pub type Bins = Vec<String>;
    pub fn parse(text: &str) -> Bins {
        let mut bins = Vec::new();
        let mut in_bin = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if in_bin {
                if let Some(name) = line.strip_prefix("name = ") {
                    bins.push(name.trim_matches('"').to_string());
                }
            }
        }
        bins
    }
}

#[test]
fn every_lambda_binary_has_a_function_and_every_schedule_a_target() {
    let main = template("template.yaml");
    let functions = resources(&main, "AWS::Serverless::Function");
    let built: BTreeSet<String> = functions
        .values()
        .map(|f| {
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("Binary")
                .to_string()
        })
        .collect();
    for function in functions.values() {
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
    }
    assert_eq!(
        built,
        lambda_binaries(),
        "template functions vs [[bin]] targets"
    );

    let schedules = resources(&main, "AWS::Scheduler::Schedule");
    assert_eq!(
        schedules.len(),
        functions.len(),
        "one schedule per function"
    );
    for (name, schedule) in &schedules {
        let properties = &schedule["Properties"];
        assert_eq!(
            properties["ScheduleExpressionTimezone"].as_str(),
            Some("Europe/Dublin"),
            "{name}"
        );
        let target = target_name(&properties["Target"]["Arn"]).unwrap_or_default();
        assert!(
            functions.contains_key(&target),
            "{name} targets {target}, which is not a function"
        );
        assert!(
            properties["Target"]["RetryPolicy"].is_mapping(),
            "{name} has no retry policy"
        );
        assert!(
            properties["Target"]["DeadLetterConfig"].is_mapping(),
            "{name} has no dead-letter queue"
        );
    }
}

/// Upper-case names in quotes in the code that reads configuration: the variables it knows.
fn variables_the_code_reads() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    for path in [
        "shared/lambda",
        "shared/store/s3",
        "shared/config.rs",
        "shared/aws.rs",
    ] {
        let path = root().join(path);
        let files: Vec<_> = if path.is_dir() {
            std::fs::read_dir(&path)
                .expect("dir")
                .map(|e| e.expect("entry").path())
                .collect()
        } else {
            vec![path]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            for piece in text.split('"').skip(1).step_by(2) {
                if piece.len() > 3
                    && piece.contains('_')
                    && piece
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                {
                    known.insert(piece.to_string());
                }
            }
        }
    }
    known
}

#[test]
fn every_environment_variable_is_one_the_code_reads_and_required_ones_are_set() {
    let main = template("template.yaml");
    let known = variables_the_code_reads();
    let globals: BTreeSet<String> = main["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("global variables")
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        let own: BTreeSet<String> = function["Properties"]["Environment"]["Variables"]
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let all: BTreeSet<&String> = globals.iter().chain(own.iter()).collect();
        for variable in &all {
            if variable.as_str() != "RUST_LOG" {
                assert!(
                    known.contains(variable.as_str()),
                    "{name} sets {variable}, which the code never reads"
                );
            }
        }
        assert!(
            all.iter().any(|v| *v == "BACKUP_STORE"),
            "{name} lacks BACKUP_STORE"
        );
        assert!(
            all.iter().any(|v| *v == "SNS_TOPIC_ARN"),
            "{name} lacks SNS_TOPIC_ARN"
        );
        if name != "MonitorFunction" && name != "FilesFunction" {
            assert!(
                all.iter().any(|v| *v == "DATABASE_SECRET_ARN"),
                "{name} has no database credentials"
            );
        }
    }
}

/// Issue 13: every function connects with TLS on, trusting the RDS CA bundle that the layer
/// built from `infra/rds-ca/Makefile` puts where the functions look for it.
#[test]
fn every_function_uses_tls_with_the_rds_ca_bundle_its_layer_carries() {
    let main = template("template.yaml");
    let globals = &main["Globals"]["Function"];
    let variables = &globals["Environment"]["Variables"];
    assert_eq!(variables["DATABASE_TLS"].as_str(), Some("on"));
    let ca_file = variables["DATABASE_TLS_CA_FILE"]
        .as_str()
        .expect("DATABASE_TLS_CA_FILE in Globals");
    let layers = globals["Layers"].as_sequence().expect("Globals Layers");
    let layer_name = layers
        .iter()
        .filter_map(target_name)
        .next()
        .expect("a layer");
    let layer = &main["Resources"][layer_name.as_str()];
    assert_eq!(
        layer["Type"].as_str(),
        Some("AWS::Serverless::LayerVersion")
    );
    assert_eq!(layer["Metadata"]["BuildMethod"].as_str(), Some("makefile"));
    let content = layer["Properties"]["ContentUri"]
        .as_str()
        .expect("ContentUri");
    let makefile = std::fs::read_to_string(root().join("infra").join(content).join("Makefile"))
        .expect("the layer's Makefile");
    assert!(
        makefile.contains(&format!("build-{layer_name}:")),
        "the Makefile has no build-{layer_name} target"
    );
    // A layer is unpacked under /opt; the Makefile writes under $(ARTIFACTS_DIR).
    let inside = ca_file
        .strip_prefix("/opt/")
        .expect("the CA file is in a layer");
    assert!(
        makefile.contains(&format!("$(ARTIFACTS_DIR)/{inside}")),
        "the layer does not build {ca_file}"
    );
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        let own = &function["Properties"]["Environment"]["Variables"];
        assert!(
            own["DATABASE_TLS"].is_null() && own["DATABASE_TLS_CA_FILE"].is_null(),
            "{name} overrides the global TLS settings"
        );
    }
}

#[derive(Debug)]
enum Expiry {
    /// Objects expire this many days after they were written.
    Current(u64),
    /// Objects never expire by age; once deleted (garbage collection), the deleted versions
    /// go after this many days.
    AfterRemoval(u64),
}

/// The README's retention table: prefix -> (transition days, expiry).
fn readme_retention() -> BTreeMap<String, (Vec<u64>, Expiry)> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let mut rows = BTreeMap::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[3].ends_with(" d") && !cells[3].contains(" d (") {
            continue;
        }
        let prefix = cells[1].trim_matches('`').to_string();
        let numbers = |cell: &str| -> Vec<u64> {
            cell.split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .filter_map(|n| n.parse().ok())
                .collect()
        };
        let transitions = numbers(cells[2]);
        let days = numbers(cells[3]).first().copied().unwrap_or(0);
        let expiry = if cells[3].contains("after garbage collection") {
            Expiry::AfterRemoval(days)
        } else {
            Expiry::Current(days)
        };
        rows.insert(prefix, (transitions, expiry));
    }
    rows
}

#[test]
fn the_lifecycle_is_the_readme_retention_table() {
    let table = readme_retention();
    assert!(
        table.contains_key("database/daily/"),
        "README retention table: {table:?}"
    );
    for file in ["template.yaml", "replica.yaml"] {
        let template = template(file);
        for (name, bucket) in resources(&template, "AWS::S3::Bucket") {
            let Some(rules) = bucket["Properties"]["LifecycleConfiguration"]["Rules"].as_sequence()
            else {
                continue;
            };
            for rule in rules {
                let Some(prefix) = rule["Prefix"].as_str() else {
                    continue;
                };
                let (transitions, expiry) = table.get(prefix).unwrap_or_else(|| {
                    panic!("{file} {name}: prefix {prefix} is not in the README's table")
                });
                let days: Vec<u64> = rule["Transitions"]
                    .as_sequence()
                    .map(|t| {
                        t.iter()
                            .filter_map(|t| t["TransitionInDays"].as_u64())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(&days, transitions, "{file} {name} {prefix} transitions");
                match expiry {
                    Expiry::Current(days) => assert_eq!(
                        rule["ExpirationInDays"].as_u64(),
                        Some(*days),
                        "{file} {name} {prefix} expiry"
                    ),
                    Expiry::AfterRemoval(days) => {
                        assert_eq!(
                            rule["ExpirationInDays"].as_u64(),
                            None,
                            "{file} {name} {prefix}: content shared by snapshots must not expire by age"
                        );
                        assert_eq!(
                            rule["NoncurrentVersionExpiration"]["NoncurrentDays"].as_u64(),
                            Some(*days),
                            "{file} {name} {prefix} expiry after removal"
                        );
                    }
                }
            }
        }
    }
    // Grade records: 7 years minimum.
    assert!(
        matches!(table["database/daily/"].1, Expiry::Current(days) if days >= 7 * 365),
        "{table:?}"
    );
    // Personal data: 6 years after it leaves the live system.
    assert!(
        matches!(table["files/"].1, Expiry::AfterRemoval(days) if days >= 6 * 365),
        "{table:?}"
    );
}
