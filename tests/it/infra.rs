//! The SAM templates agree with the code and the README: a function for every Lambda binary
//! and back, schedules that target functions, environment variables the code reads, the
//! lifecycle the README's retention table promises, one KMS key from the functions' writes to
//! the replica, a VPC endpoint for every service the functions in the VPC call (and only the
//! functions that need the VPC in it), samconfig environments that give every required
//! parameter, and IAM that gives each role what it uses and no more (replication of what the
//! rules replicate, a cross-account replica's grants, the monitor's reads) with every service
//! principal held to this account.

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
    // The restore test runs either as its function or as a Fargate task, never both.
    let on_fargate = |s: &Value| s["Condition"].as_str() == Some("RestoreTestOnFargate");
    assert_eq!(
        schedules.values().filter(|s| !on_fargate(s)).count(),
        functions.len(),
        "one schedule per function"
    );
    assert_eq!(
        schedules["RestoreTestSchedule"]["Condition"].as_str(),
        Some("RestoreTestOnLambda")
    );
    for (name, schedule) in &schedules {
        let properties = &schedule["Properties"];
        assert_eq!(
            properties["ScheduleExpressionTimezone"].as_str(),
            Some("Europe/Dublin"),
            "{name}"
        );
        let target = target_name(&properties["Target"]["Arn"]).unwrap_or_default();
        if on_fargate(schedule) {
            let task = target_name(&properties["Target"]["EcsParameters"]["TaskDefinitionArn"])
                .unwrap_or_default();
            let definition = &main["Resources"][task.as_str()];
            assert_eq!(target, "RestoreTestCluster", "{name}");
            assert_eq!(
                properties["ScheduleExpression"],
                schedules["RestoreTestSchedule"]["Properties"]["ScheduleExpression"],
                "the task runs on the function's schedule"
            );
            let container = &definition["Properties"]["ContainerDefinitions"][0];
            assert_eq!(
                container["Command"][0].as_str(),
                Some("restore-test"),
                "{name} runs the restore test"
            );
            let variables: BTreeSet<&str> = container["Environment"]
                .as_sequence()
                .expect("Environment")
                .iter()
                .filter_map(|v| v["Name"].as_str())
                .collect();
            for needed in [
                "BACKUP_STORE",
                "BACKUP_KMS_KEY_ID",
                "SNS_TOPIC_ARN",
                "DATABASE_SECRET_ARN",
            ] {
                assert!(variables.contains(needed), "the task lacks {needed}");
            }
        } else {
            assert!(
                functions.contains_key(&target),
                "{name} targets {target}, which is not a function"
            );
        }
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
        "shared/defaults.rs",
        "shared/env.rs",
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

#[derive(Debug, PartialEq)]
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
        // "`prefix`" or "`prefix` what `tag=value`": the rule for that prefix and tag filter.
        let quoted: Vec<&str> = cells[1].split('`').skip(1).step_by(2).collect();
        let prefix = match quoted.as_slice() {
            [] => cells[1].to_string(),
            [prefix] => prefix.to_string(),
            [prefix, tag, ..] => format!("{prefix} {tag}"),
        };
        let numbers = |cell: &str| -> Vec<u64> {
            cell.split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .filter_map(|n| n.parse().ok())
                .collect()
        };
        let transitions = numbers(cells[2]);
        let days = numbers(cells[3]).first().copied().unwrap_or(0);
        let expiry =
            if cells[3].contains("after garbage collection") || cells[3].contains("old versions") {
                Expiry::AfterRemoval(days)
            } else {
                Expiry::Current(days)
            };
        rows.insert(prefix, (transitions, expiry));
    }
    rows
}

/// No function can delete a complete backup: no role of the template allows s3:DeleteObject
/// (or s3:*) on `database/daily/`, nor deleting object versions anywhere.
#[test]
fn no_function_role_can_delete_a_daily_backup() {
    let main = template("template.yaml");
    let mut statements: Vec<(String, &Value)> = Vec::new();
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        statements.extend(
            function_statements(function)
                .into_iter()
                .map(|s| (name.clone(), s)),
        );
    }
    for (name, role) in resources(&main, "AWS::IAM::Role") {
        for policy in one_or_many(&role["Properties"]["Policies"]) {
            for statement in one_or_many(&policy["PolicyDocument"]["Statement"]) {
                let statement = match if_parts(statement) {
                    Some((_, yes, _)) => yes,
                    None => statement,
                };
                statements.push((name.clone(), statement));
            }
        }
    }
    assert!(
        statements.len() > 20,
        "found {} statements",
        statements.len()
    );
    for (name, statement) in statements {
        if statement["Effect"].as_str() != Some("Allow") {
            continue;
        }
        for action in actions(statement) {
            let deletes = matches!(
                action,
                "s3:*" | "s3:Delete*" | "s3:DeleteObject" | "s3:DeleteObjectVersion"
            );
            if !deletes {
                continue;
            }
            assert_ne!(
                action, "s3:DeleteObjectVersion",
                "{name} may delete versions"
            );
            for resource in one_or_many(&statement["Resource"]) {
                let text = sub_text(resource).unwrap_or_default();
                assert!(
                    !text.contains("/database/") && !text.ends_with("Arn}/*") && text != "*",
                    "{name} may {action} on {text}: complete backups must be deletable by no function"
                );
            }
        }
    }
}

#[test]
fn the_lifecycle_is_the_readme_retention_table() {
    let table = readme_retention();
    assert!(
        table.contains_key("database/daily/ backup-object=data"),
        "README retention table: {table:?}"
    );
    let mut seen = BTreeSet::new();
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
                let tags: Vec<String> = one_or_many(&rule["TagFilters"])
                    .into_iter()
                    .map(|t| {
                        format!(
                            "{}={}",
                            t["Key"].as_str().unwrap_or_default(),
                            t["Value"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                let prefix = match tags.as_slice() {
                    [] => prefix.to_string(),
                    [tag] => format!("{prefix} {tag}"),
                    more => panic!("{file} {name} {prefix}: one tag filter per rule: {more:?}"),
                };
                let prefix = prefix.as_str();
                let (transitions, expiry) = table.get(prefix).unwrap_or_else(|| {
                    panic!("{file} {name}: prefix {prefix} is not in the README's table")
                });
                seen.insert((file, prefix.to_string()));
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
    // The catalog index never leaves S3 Standard and never expires while current.
    assert_eq!(
        table.get("catalog/"),
        Some(&(Vec::new(), Expiry::AfterRemoval(7))),
        "{table:?}"
    );
    // Grade records: 7 years minimum, their manifests as long, never moved out of Standard.
    for rule in [
        "database/daily/ backup-object=data",
        "database/daily/ backup-object=manifest",
    ] {
        assert!(
            matches!(table[rule].1, Expiry::Current(days) if days >= 7 * 365),
            "{rule}: {table:?}"
        );
    }
    for manifests in [
        "database/daily/ backup-object=manifest",
        "database/incremental/ backup-object=manifest",
    ] {
        assert!(
            table[manifests].0.is_empty(),
            "{manifests} must never transition"
        );
    }
    // A sealed daily backup is locked as long as it is kept, by the dump that seals it.
    let main = template("template.yaml");
    let lock_days = main["Parameters"]["DailyBackupLockDays"]["Default"]
        .as_u64()
        .expect("DailyBackupLockDays");
    assert!(
        matches!(table["database/daily/ backup-object=data"].1, Expiry::Current(days) if lock_days >= days),
        "daily backups are kept longer than the {lock_days} days they are locked"
    );
    let dump = &main["Resources"]["DumpFunction"];
    let variables = &dump["Properties"]["Environment"]["Variables"];
    assert_eq!(
        reference(&variables["BACKUP_DAILY_LOCK_DAYS"]),
        Some(parameter("DailyBackupLockDays"))
    );
    assert_eq!(
        reference(&variables["BACKUP_DAILY_LOCK_MODE"]),
        Some(parameter("DailyBackupLockMode"))
    );
    let modes = &main["Parameters"]["DailyBackupLockMode"]["AllowedValues"];
    assert!(serde_yaml::to_string(modes)
        .expect("YAML")
        .contains("COMPLIANCE"));
    assert!(
        function_statements(dump)
            .iter()
            .any(|s| actions(s).contains(&"s3:PutObjectRetention")
                && sub_text(&s["Resource"]).is_some_and(|r| r.ends_with("/database/daily/*"))),
        "the dump cannot lock what it seals"
    );
    // What a failed run left expires within days, in both buckets, by the tag the code writes.
    assert!(
        matches!(table["database/ backup-state=partial"].1, Expiry::Current(days) if days <= 7),
        "{table:?}"
    );
    for file in ["template.yaml", "replica.yaml"] {
        for rule in [
            "database/daily/ backup-object=data",
            "database/daily/ backup-object=manifest",
            "database/incremental/ backup-object=data",
            "database/incremental/ backup-object=manifest",
            "database/ backup-state=partial",
        ] {
            assert!(
                seen.contains(&(file, rule.to_string())),
                "{file} has no rule {rule}"
            );
        }
    }
    // The S3 driver's files, read together (the tagging rules have a file of their own).
    let writer: String = std::fs::read_dir(root().join("shared/store/s3"))
        .expect("shared/store/s3")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("source"))
        .collect();
    for tag in [
        "backup-object=data",
        "backup-object=manifest",
        "backup-state=partial",
        "backup-state=sealed",
    ] {
        assert!(
            writer.contains(tag),
            "the S3 store never writes the tag {tag}"
        );
    }
    // Personal data: 6 years after it leaves the live system.
    assert!(
        matches!(table["files/"].1, Expiry::AfterRemoval(days) if days >= 6 * 365),
        "{table:?}"
    );
}

/// What a template value points at: `!Ref Name` or `!GetAtt Name.Attribute` (or their long forms).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reference {
    Ref(String),
    GetAtt(String, String),
}

fn reference(value: &Value) -> Option<Reference> {
    fn get_att(value: &Value) -> Option<Reference> {
        match value {
            Value::String(text) => {
                let (resource, attribute) = text.split_once('.')?;
                Some(Reference::GetAtt(resource.into(), attribute.into()))
            }
            Value::Sequence(parts) if parts.len() == 2 => Some(Reference::GetAtt(
                parts[0].as_str()?.into(),
                parts[1].as_str()?.into(),
            )),
            _ => None,
        }
    }
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged
            .value
            .as_str()
            .map(|name| Reference::Ref(name.into())),
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => get_att(&tagged.value),
        Value::Mapping(mapping) if mapping.len() == 1 => match mapping.get("Ref") {
            Some(name) => name.as_str().map(|name| Reference::Ref(name.into())),
            None => mapping.get("Fn::GetAtt").and_then(get_att),
        },
        _ => None,
    }
}

fn arn_of(resource: &str) -> Reference {
    Reference::GetAtt(resource.into(), "Arn".into())
}

fn parameter(name: &str) -> Reference {
    Reference::Ref(name.into())
}

fn is_no_value(value: &Value) -> bool {
    reference(value) == Some(parameter("AWS::NoValue"))
}

/// `!If [Condition, WhenTrue, WhenFalse]`.
fn if_parts(value: &Value) -> Option<(&str, &Value, &Value)> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    if tagged.tag != "If" {
        return None;
    }
    match tagged.value.as_sequence()?.as_slice() {
        [condition, when_true, when_false] => Some((condition.as_str()?, when_true, when_false)),
        _ => None,
    }
}

/// The text of a `!Sub "…"` (or of a plain string).
fn sub_text(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str(),
        other => other.as_str(),
    }
}

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    }
}

/// A function's IAM statements, those behind an `!If` too (whichever branch is a statement).
fn function_statements(function: &Value) -> Vec<&Value> {
    let mut found = Vec::new();
    for policy in one_or_many(&function["Properties"]["Policies"]) {
        for statement in one_or_many(&policy["Statement"]) {
            match if_parts(statement) {
                Some((_, when_true, when_false)) => found.extend(
                    [when_true, when_false]
                        .into_iter()
                        .filter(|branch| branch.is_mapping()),
                ),
                None => found.push(statement),
            }
        }
    }
    found
}

/// An IAM role's statements.
fn role_statements(role: &Value) -> Vec<&Value> {
    one_or_many(&role["Properties"]["Policies"])
        .into_iter()
        .flat_map(|policy| one_or_many(&policy["PolicyDocument"]["Statement"]))
        .collect()
}

fn actions(statement: &Value) -> Vec<&str> {
    one_or_many(&statement["Action"])
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

/// What the Allow statements let `action` be done on (`kms:GenerateDataKey*` covers
/// `kms:GenerateDataKey`).
fn allowed(statements: &[&Value], action: &str) -> Vec<Reference> {
    statements
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .filter(|s| {
            actions(s)
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => action.starts_with(prefix),
                    None => *pattern == action,
                })
        })
        .flat_map(|s| one_or_many(&s["Resource"]))
        .filter_map(reference)
        .collect()
}

/// Issue 14, part 1: every object is encrypted with the stack's BackupKey, and so replicates. The
/// functions name the key on every write (without it S3 picks the account's aws/s3 key), the
/// bucket's default is the same key with a bucket key, the policy refuses a write under any
/// other key, every function may use the key, and the replication role decrypts with exactly it
/// and encrypts the copies with the replica stack's key, the one its bucket uses.
#[test]
fn every_backup_is_written_under_the_stacks_key_and_replicated_under_the_replica_key() {
    let main = template("template.yaml");
    let keys = resources(&main, "AWS::KMS::Key");
    assert_eq!(keys.len(), 1, "one KMS key in the main stack: {keys:?}");
    let key = keys.keys().next().expect("the key").clone();
    let key_arn = arn_of(&key);

    let globals = &main["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        reference(&globals["BACKUP_KMS_KEY_ID"]),
        Some(key_arn.clone()),
        "the functions must send {key}'s ARN with every write (Globals BACKUP_KMS_KEY_ID)"
    );
    assert!(
        globals["BACKUP_SSE"].is_null(),
        "BACKUP_SSE would override the key"
    );
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        let own = &function["Properties"]["Environment"]["Variables"];
        assert!(
            own["BACKUP_KMS_KEY_ID"].is_null() && own["BACKUP_SSE"].is_null(),
            "{name} overrides the encryption set in the Globals"
        );
        let statements = function_statements(function);
        for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
            assert!(
                allowed(&statements, action).contains(&key_arn),
                "{name} may not {action} with {key}, so it could not write or read backups"
            );
        }
        if !own["MONITOR_REPLICA_STORE"].is_null() {
            assert!(
                allowed(&statements, "kms:Decrypt").contains(&parameter("ReplicaKmsKeyArn")),
                "{name} reads the replica but may not decrypt it"
            );
            // Issue 14 part 2: the replica's client is for its own region, asked once.
            assert!(
                allowed(&statements, "s3:GetBucketLocation").contains(&parameter("ReplicaBucketArn")),
                "{name} cannot ask the replica bucket's region, so it would read it through eu-west-1"
            );
        }
    }

    let buckets = resources(&main, "AWS::S3::Bucket");
    let (bucket_name, bucket) = buckets
        .iter()
        .find(|(_, b)| b["Properties"]["ReplicationConfiguration"].is_mapping())
        .expect("the replicated backup bucket");
    let encryption =
        &bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"].as_str(),
        Some("aws:kms")
    );
    assert_eq!(
        reference(&encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]),
        Some(key_arn.clone()),
        "{bucket_name}'s default key"
    );
    assert_eq!(
        encryption["BucketKeyEnabled"].as_bool(),
        Some(true),
        "{bucket_name}: bucket key"
    );

    // The bucket policy, judged by IAM's rules: what it refuses and admits is spelled out in
    // the_bucket_policy_refuses_only_writes_that_name_another_encryption, and the real requests
    // are judged in every_request_the_cli_and_the_functions_send_passes_the_bucket_policy.
    assert_eq!(
        bucket_name, "BackupBucket",
        "the policy tests resolve BackupBucket"
    );
    let statements = template_bucket_policy("toc-policy");
    assert!(
        !denials(&statements, &put_object(&named(OTHER_KEY))).is_empty(),
        "the policy must refuse writes under another KMS key"
    );
    assert!(
        denials(&statements, &put_object(&named(BACKUP_KEY))).is_empty()
            && denials(&statements, &put_object(&[])).is_empty(),
        "the policy must admit writes naming {key}, and writes naming none (the bucket default)"
    );

    let replication = &bucket["Properties"]["ReplicationConfiguration"];
    let role = match reference(&replication["Role"]) {
        Some(Reference::GetAtt(role, attribute)) if attribute == "Arn" => role,
        other => panic!("the replication role is {other:?}"),
    };
    let statements = role_statements(&main["Resources"][role.as_str()]);
    assert_eq!(
        allowed(&statements, "kms:Decrypt"),
        vec![key_arn.clone()],
        "{role} decrypts the backups with {key}, and nothing else"
    );
    assert_eq!(
        allowed(&statements, "kms:Encrypt"),
        vec![parameter("ReplicaKmsKeyArn")],
        "{role} encrypts the copies with the replica key"
    );
    let rules = replication["Rules"]
        .as_sequence()
        .expect("replication rules");
    assert!(!rules.is_empty());
    for rule in rules {
        let id = rule["Id"].as_str().unwrap_or("?");
        assert_eq!(rule["Status"].as_str(), Some("Enabled"), "rule {id}");
        assert_eq!(
            rule["SourceSelectionCriteria"]["SseKmsEncryptedObjects"]["Status"].as_str(),
            Some("Enabled"),
            "rule {id} must select SSE-KMS objects: every backup is one"
        );
        let destination = &rule["Destination"];
        assert_eq!(
            reference(&destination["EncryptionConfiguration"]["ReplicaKmsKeyID"]),
            Some(parameter("ReplicaKmsKeyArn")),
            "rule {id}"
        );
        assert_eq!(
            reference(&destination["Bucket"]),
            Some(parameter("ReplicaBucketArn")),
            "rule {id}"
        );
    }
}

/// Issue 14: the main stack's parameters that come from the replica stack are its outputs, by the
/// same names (the replica once offered `ReplicaKeyArn` for the `ReplicaKmsKeyArn` parameter), and
/// the key output is the replica bucket's own default key.
#[test]
fn the_parameters_from_the_replica_stack_are_its_outputs_by_name() {
    let main = template("template.yaml");
    let replica = template("replica.yaml");
    let outputs = replica["Outputs"]
        .as_mapping()
        .expect("replica.yaml Outputs");
    let output_names: BTreeSet<&str> = outputs.keys().filter_map(Value::as_str).collect();
    let mut from_replica = BTreeSet::new();
    for (name, definition) in main["Parameters"].as_mapping().expect("Parameters") {
        let name = name.as_str().expect("parameter name");
        let description = definition["Description"].as_str().unwrap_or_default();
        let Some((_, rest)) = description.split_once("replica stack's ") else {
            continue;
        };
        let output = rest.split_whitespace().next().unwrap_or_default();
        assert_eq!(
            output, name,
            "parameter {name} is the replica stack's {output} output: give both one name"
        );
        assert!(
            output_names.contains(name),
            "parameter {name} names a replica output that replica.yaml lacks (it has {output_names:?})"
        );
        from_replica.insert(name);
    }
    for (name, definition) in outputs {
        let name = name.as_str().expect("output name");
        let description = definition["Description"].as_str().unwrap_or_default();
        let target = description
            .split_once("main stack's ")
            .and_then(|(_, rest)| rest.split_whitespace().next());
        assert_eq!(
            target,
            Some(name),
            "replica output {name} must name the main-stack parameter that takes it, its own name"
        );
        assert!(
            from_replica.contains(name),
            "replica output {name}: no main-stack parameter says it comes from the replica stack"
        );
    }
    assert!(
        from_replica.contains("ReplicaBucketArn") && from_replica.contains("ReplicaKmsKeyArn"),
        "{from_replica:?}"
    );

    let bucket = match reference(&replica["Outputs"]["ReplicaBucketArn"]["Value"]) {
        Some(Reference::GetAtt(bucket, _)) => bucket,
        other => panic!("ReplicaBucketArn output: {other:?}"),
    };
    let default_key = &replica["Resources"][bucket.as_str()]["Properties"]["BucketEncryption"]
        ["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"];
    assert!(
        reference(default_key).is_some(),
        "{bucket} has no default KMS key"
    );
    assert_eq!(
        reference(&replica["Outputs"]["ReplicaKmsKeyArn"]["Value"]),
        reference(default_key),
        "the replica key the main stack replicates under is the replica bucket's default key"
    );
    for file in ["README.md", "infra/README.md", "samconfig.toml"] {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        assert!(
            !text.contains("ReplicaKeyArn"),
            "{file} still names ReplicaKeyArn"
        );
    }
}

/// IAM service prefixes in the functions' policies that are no network call from the function,
/// so need no endpoint. (Logs, X-Ray, the VPC network interfaces, the dead-letter queue and the
/// on-failure destination are not in the functions' own policies: SAM adds them, and the Lambda
/// service does that work outside the function's network.)
const NOT_CALLED_FROM_THE_FUNCTION: [(&str, &str); 3] = [
    (
        "kms",
        "S3 (SSE-KMS), SNS (the encrypted topic) and Secrets Manager call KMS for the function, \
         which only has to be allowed to; the crate has no KMS client (checked below)",
    ),
    (
        "elasticfilesystem",
        "ClientMount authorises the NFS mount Lambda makes to the mount target inside the VPC",
    ),
    (
        "rds-db",
        "rds-db:connect authorises a token the function signs itself; the connection goes to the database",
    ),
];

/// Where a function's `VpcConfig` puts it: always (a mapping), under a condition (`!If [C,
/// mapping, NoValue]`), or nowhere.
fn vpc_config(function: &Value) -> Option<&Value> {
    let vpc = &function["Properties"]["VpcConfig"];
    if vpc.is_mapping() {
        return Some(vpc);
    }
    if_parts(vpc).and_then(|(_, when_true, _)| when_true.is_mapping().then_some(when_true))
}

/// Issue 14, part 3: with NetworkPath VpcEndpoints (the default) each AWS service that a function
/// in the VPC calls (the service prefixes of its IAM actions) has an endpoint, no endpoint is
/// idle, and the interface endpoints take HTTPS from the functions' own security group.
#[test]
fn with_vpc_endpoints_every_service_the_functions_in_the_vpc_call_has_one() {
    let main = template("template.yaml");
    assert_eq!(
        main["Parameters"]["NetworkPath"]["Default"].as_str(),
        Some("VpcEndpoints")
    );
    let Value::Tagged(condition) = &main["Conditions"]["UseVpcEndpoints"] else {
        panic!("no UseVpcEndpoints condition");
    };
    assert!(condition.tag == "Equals");
    let compared = condition.value.as_sequence().expect("!Equals");
    assert_eq!(reference(&compared[0]), Some(parameter("NetworkPath")));
    assert_eq!(compared[1].as_str(), Some("VpcEndpoints"));

    let mut endpoints = BTreeMap::new();
    let mut endpoint_groups = BTreeSet::new();
    // What the restore test's Fargate task adds: pulling its image and sending its logs.
    let mut for_the_task = BTreeSet::new();
    for (name, endpoint) in resources(&main, "AWS::EC2::VPCEndpoint") {
        match endpoint["Condition"].as_str() {
            Some("UseVpcEndpoints") => {}
            Some("FargateNeedsEndpoints") => {
                let service = sub_text(&endpoint["Properties"]["ServiceName"]).unwrap_or_default();
                for_the_task.insert(service.rsplit('.').next().unwrap_or_default().to_string());
                continue;
            }
            other => panic!("{name} must exist with NetworkPath VpcEndpoints only: {other:?}"),
        }
        let properties = &endpoint["Properties"];
        let service = sub_text(&properties["ServiceName"])
            .and_then(|s| s.strip_prefix("com.amazonaws.${AWS::Region}."))
            .unwrap_or_else(|| panic!("{name}: ServiceName {:?}", properties["ServiceName"]))
            .to_string();
        assert_eq!(
            reference(&properties["VpcId"]),
            Some(parameter("VpcId")),
            "{name}"
        );
        if service == "s3" {
            assert_eq!(
                properties["VpcEndpointType"].as_str(),
                Some("Gateway"),
                "{name}: S3 through a gateway endpoint costs nothing"
            );
            assert_eq!(
                reference(&properties["RouteTableIds"]),
                Some(parameter("RouteTableIds")),
                "{name}"
            );
        } else {
            assert_eq!(
                properties["VpcEndpointType"].as_str(),
                Some("Interface"),
                "{name}"
            );
            assert_eq!(
                properties["PrivateDnsEnabled"].as_bool(),
                Some(true),
                "{name}: without private DNS the SDK's usual host name would not lead to it"
            );
            assert_eq!(
                reference(&properties["SubnetIds"]),
                Some(parameter("SubnetIds")),
                "{name}"
            );
            let groups = one_or_many(&properties["SecurityGroupIds"]);
            assert!(!groups.is_empty(), "{name} has no security group");
            for group in groups {
                match reference(group) {
                    Some(Reference::Ref(group)) => endpoint_groups.insert(group),
                    other => panic!("{name}: security group {other:?}"),
                };
            }
        }
        assert!(
            endpoints.insert(service.clone(), name.clone()).is_none(),
            "two endpoints for {service}"
        );
    }

    // The interface endpoints take HTTPS from one group, which the functions in the VPC carry.
    assert_eq!(endpoint_groups.len(), 1, "{endpoint_groups:?}");
    let endpoint_group = endpoint_groups.into_iter().next().expect("endpoint group");
    let clients: BTreeSet<String> = resources(&main, "AWS::EC2::SecurityGroupIngress")
        .into_values()
        .map(|rule| &rule["Properties"])
        .filter(|rule| reference(&rule["GroupId"]) == Some(parameter(&endpoint_group)))
        .inspect(|rule| {
            assert_eq!(rule["IpProtocol"].as_str(), Some("tcp"));
            assert_eq!(rule["FromPort"].as_u64(), Some(443));
            assert_eq!(rule["ToPort"].as_u64(), Some(443));
        })
        .filter_map(|rule| match reference(&rule["SourceSecurityGroupId"]) {
            Some(Reference::Ref(group)) => Some(group),
            _ => None,
        })
        .collect();
    assert_eq!(
        clients.len(),
        1,
        "HTTPS into {endpoint_group} from: {clients:?}"
    );
    let client_group = clients.into_iter().next().expect("client group");
    assert!(
        main["Resources"][endpoint_group.as_str()]["Properties"]["SecurityGroupIngress"].is_null(),
        "{endpoint_group}: ingress only through the checked rule"
    );

    let mut callers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        let Some(vpc) = vpc_config(function) else {
            continue;
        };
        let Some((condition, with_endpoints, without)) = if_parts(&vpc["SecurityGroupIds"]) else {
            panic!("{name}: its SecurityGroupIds must add {client_group} under UseVpcEndpoints");
        };
        assert_eq!(condition, "UseVpcEndpoints", "{name}");
        assert!(
            serde_yaml::to_string(with_endpoints)
                .expect("YAML")
                .contains(&client_group),
            "{name} does not carry {client_group}, so the endpoints refuse it"
        );
        assert_eq!(
            reference(without),
            Some(parameter("SecurityGroupIds")),
            "{name}"
        );
        for statement in function_statements(function) {
            if statement["Effect"].as_str() != Some("Allow") {
                continue;
            }
            for action in actions(statement) {
                let service = action.split(':').next().unwrap_or(action).to_string();
                callers
                    .entry(service.clone())
                    .or_default()
                    .insert(name.clone());
                calls.entry(service).or_default().insert(action.to_string());
            }
        }
    }
    assert!(
        callers.contains_key("s3"),
        "no function in the VPC? {callers:?}"
    );

    let not_called: BTreeMap<&str, &str> = NOT_CALLED_FROM_THE_FUNCTION.into_iter().collect();
    for (service, functions) in &callers {
        if let Some(reason) = not_called.get(service.as_str()) {
            eprintln!("{service}: no endpoint needed: {reason}");
            continue;
        }
        // Endpoint service names are the IAM prefixes, but for CloudWatch.
        let endpoint = if service == "cloudwatch" {
            "monitoring"
        } else {
            service.as_str()
        };
        assert!(
            endpoints.contains_key(endpoint),
            "{functions:?} in the VPC call {service}, which has no VPC endpoint: without a NAT they would time out"
        );
    }
    for (service, name) in &endpoints {
        let service = if service == "monitoring" {
            "cloudwatch"
        } else {
            service.as_str()
        };
        assert!(
            callers.contains_key(service),
            "{name}: no function in the VPC calls {service} (an interface endpoint costs about $16 a month)"
        );
    }

    assert_eq!(
        for_the_task,
        ["api", "dkr", "logs"].map(String::from).into(),
        "the Fargate task's endpoints: ECR API, ECR registry, CloudWatch Logs"
    );
    let task_condition =
        serde_yaml::to_string(&main["Conditions"]["FargateNeedsEndpoints"]).expect("YAML");
    assert!(
        task_condition.contains("UseVpcEndpoints")
            && task_condition.contains("RestoreTestOnFargate"),
        "{task_condition}"
    );

    // The reasons above still hold.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        !manifest.contains("aws-sdk-kms"),
        "the crate has a KMS client now: functions in the VPC would call KMS themselves and need a kms endpoint"
    );
    for action in calls.get("elasticfilesystem").into_iter().flatten() {
        assert!(
            action.starts_with("elasticfilesystem:Client"),
            "{action} is an API call"
        );
    }
    for action in calls.get("rds-db").into_iter().flatten() {
        assert_eq!(action, "rds-db:connect");
    }
}

/// `(job, needs_database)` from every `FunctionContext::from_env("JOB", env, sdk_config,
/// NEEDS_DATABASE)` in shared/lambda: which functions the code connects to a database.
fn database_needs_in_the_code() -> BTreeMap<String, bool> {
    let mut found = BTreeMap::new();
    let folder = root().join("shared").join("lambda");
    for entry in std::fs::read_dir(&folder).expect("shared/lambda") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        for call in text.split("FunctionContext::from_env(").skip(1) {
            let Some(end) = call.find(')') else { continue };
            let arguments: Vec<&str> = call[..end]
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect();
            let (Some(job), Some(needs)) = (arguments.first(), arguments.last()) else {
                continue;
            };
            let Some(job) = job.strip_prefix('"').and_then(|j| j.strip_suffix('"')) else {
                continue;
            };
            let needs = match *needs {
                "true" => true,
                "false" => false,
                _ => continue,
            };
            found.insert(job.to_string(), needs);
        }
    }
    found
}

/// Issue 14, part 3: the functions outside the VPC are exactly those that never connect to a
/// database (as the code says), except while one mounts the EFS file system, which only a
/// function in the VPC can; a function that connects to the database is always in the VPC.
#[test]
fn only_the_functions_that_connect_to_the_database_or_mount_efs_are_in_the_vpc() {
    let main = template("template.yaml");
    assert!(
        main["Globals"]["Function"]["VpcConfig"].is_null(),
        "a VpcConfig in the Globals puts every function in the VPC"
    );
    let needs = database_needs_in_the_code();
    let mut seen = BTreeSet::new();
    let mut outside = BTreeSet::new();
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        let function_name =
            sub_text(&function["Properties"]["FunctionName"]).expect("FunctionName");
        let job = function_name.rsplit("}-").next().unwrap_or(function_name);
        let needs_database = *needs.get(job).unwrap_or_else(|| {
            panic!(
                "{name}: no FunctionContext::from_env(\"{job}\", …) in shared/lambda ({needs:?})"
            )
        });
        seen.insert(job.to_string());
        let own = &function["Properties"]["Environment"]["Variables"];
        assert_eq!(
            !own["DATABASE_SECRET_ARN"].is_null(),
            needs_database,
            "{name}: DATABASE_SECRET_ARN against the code's needs_database"
        );
        let vpc = &function["Properties"]["VpcConfig"];
        if needs_database {
            assert!(
                vpc.is_mapping(),
                "{name} connects to the database, so it must always be in the VPC: {vpc:?}"
            );
        } else if vpc.is_null() {
            outside.insert(job.to_string());
        } else {
            let Some((condition, inside, otherwise)) = if_parts(vpc) else {
                panic!("{name} never connects to a database, yet is always in the VPC");
            };
            assert!(
                inside.is_mapping() && is_no_value(otherwise),
                "{name}: {vpc:?}"
            );
            let Some((mounted, _, _)) = if_parts(&function["Properties"]["FileSystemConfigs"])
            else {
                panic!("{name} is in the VPC under {condition} but mounts no EFS file system");
            };
            assert_eq!(
                mounted, condition,
                "{name} must be in the VPC exactly when it mounts EFS"
            );
        }
    }
    assert_eq!(
        seen,
        needs.keys().cloned().collect::<BTreeSet<String>>(),
        "functions in the code against the template"
    );
    assert!(
        outside.contains("monitor"),
        "the monitor never connects to a database: {outside:?}"
    );
}

/// samconfig.toml, just enough: `ENV.COMMAND` -> key -> value, from `[ENV.COMMAND.parameters]`
/// sections; a commented-out `# parameter_overrides = "…"` counts as the documented value.
fn samconfig() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root().join("samconfig.toml")).expect("samconfig.toml");
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim_end_matches(".parameters").to_string();
            continue;
        }
        let line = match line.strip_prefix("# parameter_overrides") {
            Some(rest) => format!("parameter_overrides{rest}"),
            None if line.starts_with('#') => continue,
            None => line.to_string(),
        };
        if let Some((key, value)) = line.split_once(" = ") {
            sections.entry(section.clone()).or_default().insert(
                key.trim().to_string(),
                value.trim().trim_matches('"').to_string(),
            );
        }
    }
    sections
}

/// Parameters a deployment must give: those without a default, and those that a rule which
/// holds under the defaults asserts on (RouteTableIds while NetworkPath is VpcEndpoints).
fn required_parameters(template: &Value) -> BTreeSet<String> {
    fn referenced(value: &Value, parameters: &Value, into: &mut BTreeSet<String>) {
        if let Some(Reference::Ref(name)) = reference(value) {
            if parameters[name.as_str()].is_mapping() {
                into.insert(name);
            }
        }
        match value {
            Value::Tagged(tagged) => referenced(&tagged.value, parameters, into),
            Value::Sequence(items) => items.iter().for_each(|v| referenced(v, parameters, into)),
            Value::Mapping(mapping) => mapping
                .values()
                .for_each(|v| referenced(v, parameters, into)),
            _ => {}
        }
    }
    let parameters = &template["Parameters"];
    let mut required: BTreeSet<String> = parameters
        .as_mapping()
        .expect("Parameters")
        .iter()
        .filter(|(_, definition)| definition.get("Default").is_none())
        .filter_map(|(name, _)| name.as_str().map(str::to_string))
        .collect();
    for rule in template["Rules"]
        .as_mapping()
        .into_iter()
        .flat_map(|m| m.values())
    {
        let holds_by_default = match &rule["RuleCondition"] {
            Value::Null => true,
            Value::Tagged(tagged) if tagged.tag == "Equals" => {
                match tagged.value.as_sequence().map(Vec::as_slice) {
                    Some([left, right]) => match (reference(left), right.as_str()) {
                        (Some(Reference::Ref(name)), Some(value)) => {
                            parameters[name.as_str()]["Default"].as_str() == Some(value)
                        }
                        _ => false,
                    },
                    _ => false,
                }
            }
            _ => false,
        };
        if holds_by_default {
            referenced(&rule["Assertions"], parameters, &mut required);
        }
    }
    required
}

/// Issue 14, part 5: every samconfig environment that deploys a stack gives (or, for
/// `[default]`, documents) every parameter its template requires and none it lacks, so
/// `sam deploy --config-env staging` stops on no missing parameter; `sam build`'s output is
/// ignored by git.
#[test]
fn every_samconfig_environment_gives_the_parameters_its_template_requires() {
    let config = samconfig();
    let environments: BTreeSet<&str> = config
        .keys()
        .filter_map(|k| k.strip_suffix(".deploy"))
        .collect();
    for environment in &environments {
        let deploy = &config[&format!("{environment}.deploy")];
        let template_file = deploy
            .get("template_file")
            .or_else(|| {
                config
                    .get(&format!("{environment}.build"))
                    .and_then(|b| b.get("template_file"))
            })
            .or_else(|| {
                config
                    .get("default.build")
                    .and_then(|b| b.get("template_file"))
            })
            .unwrap_or_else(|| panic!("[{environment}]: which template?"));
        let file = template_file
            .strip_prefix("infra/")
            .unwrap_or_else(|| panic!("[{environment}]: {template_file}"));
        let stack = template(file);
        let given: BTreeSet<&str> = deploy
            .get("parameter_overrides")
            .map(String::as_str)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
            .collect();
        let missing: Vec<String> = required_parameters(&stack)
            .into_iter()
            .filter(|name| !given.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "samconfig [{environment}] ({template_file}) lacks {missing:?}"
        );
        for name in &given {
            assert!(
                stack["Parameters"][*name].is_mapping(),
                "samconfig [{environment}] gives {name}, which {template_file} does not have"
            );
        }
    }
    for expected in ["default", "replica", "staging"] {
        assert!(
            environments.contains(expected),
            "samconfig has no [{expected}.deploy.parameters]: {environments:?}"
        );
    }
    let ignored = std::fs::read_to_string(root().join(".gitignore")).expect(".gitignore");
    assert!(
        ignored.lines().any(|l| l.trim_matches('/') == ".aws-sam"),
        ".gitignore must ignore sam build's .aws-sam/"
    );
}

/// The job a Lambda binary or the Fargate task runs, as the user whose secret it reads.
fn role_of_job(binary: &str) -> Option<toc_sis_backup::deploy::users::Role> {
    use toc_sis_backup::deploy::users::Role;
    match binary {
        "dump" | "incremental-backup" => Some(Role::Backup),
        "binlog" => Some(Role::Binlog),
        "restore-test" => Some(Role::RestoreTest),
        _ => None,
    }
}

/// A `!Sub` as CloudFormation fills it: `!Sub "text"` or `!Sub [text, {Name: value}]`, each
/// `${Name}` replaced from `values` (the variables' own values first, as given, then
/// `parameters`); answers None when a name has no value.
fn substituted(value: &Value, parameters: &BTreeMap<&str, &str>) -> Option<String> {
    let (text, variables) = match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => match &tagged.value {
            Value::String(text) => (text.as_str(), None),
            Value::Sequence(parts) if parts.len() == 2 => (parts[0].as_str()?, Some(&parts[1])),
            _ => return None,
        },
        Value::String(text) => (text.as_str(), None),
        _ => return None,
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let name = &rest[start + 2..end];
        let own = variables.and_then(|v| v[name].as_str().map(str::to_string));
        out.push_str(&own.or_else(|| parameters.get(name).map(|v| v.to_string()))?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Issue 27, item 1: the stack makes each database user's secret itself (so `sam deploy` needs
/// none made by hand): a generated password of letters and digits in the RDS shape the functions
/// parse, for the user `setup-users` creates, under the name `setup-users --from-stack-secrets`
/// reads, encrypted with a key its readers may decrypt with; each job reads its own user's
/// secret and nothing else, under the same condition, and the stack outputs every ARN.
#[test]
fn the_stack_makes_each_database_users_secret_and_only_its_jobs_read_it() {
    use toc_sis_backup::deploy::users::Role;
    let main = template("template.yaml");
    let parameters = &main["Parameters"];
    for (name, _) in parameters.as_mapping().expect("Parameters") {
        let name = name.as_str().unwrap_or_default();
        assert!(
            !name.ends_with("SecretArn"),
            "{name}: the stack makes the secrets, a deployment gives none"
        );
    }
    assert!(
        parameters["DatabaseHost"].is_mapping() && parameters["DatabaseHost"]["Default"].is_null(),
        "DatabaseHost is required"
    );
    assert_eq!(parameters["DatabasePort"]["Default"].as_u64(), Some(3306));
    assert_eq!(
        parameters["DatabaseName"]["Default"].as_str(),
        Some("toc_sis")
    );
    assert_eq!(
        parameters["RestoreTestDatabaseHost"]["Default"].as_str(),
        Some(""),
        "the restore test runs on DatabaseHost unless told otherwise"
    );
    // What the template's SecretStringTemplate becomes: the hosts must pass their patterns, and
    // nothing in them may break the JSON.
    let given = BTreeMap::from([
        ("DatabaseHost", "toc-sis.abc123.eu-west-1.rds.amazonaws.com"),
        ("DatabasePort", "3306"),
        ("DatabaseName", "toc_sis"),
    ]);
    for (name, value) in &given {
        if let Some(pattern) = parameters[*name]["AllowedPattern"].as_str() {
            assert!(
                !pattern.contains('"') && !pattern.contains('\\'),
                "{name}: {pattern} must keep quotes and backslashes out of the secrets' JSON"
            );
            assert!(
                value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{value}"
            );
        }
    }

    let secrets = resources(&main, "AWS::SecretsManager::Secret");
    let mut by_role: BTreeMap<String, (String, Role)> = BTreeMap::new();
    for (name, secret) in &secrets {
        let properties = &secret["Properties"];
        let secret_name = sub_text(&properties["Name"]).expect("Name");
        let role = Role::ALL
            .into_iter()
            .find(|r| r.secret_name("${AWS::StackName}") == secret_name)
            .unwrap_or_else(|| {
                panic!("{name} is named {secret_name}, which setup-users --from-stack-secrets never reads")
            });
        assert!(
            by_role
                .insert(format!("{role:?}"), (name.clone(), role))
                .is_none(),
            "two secrets for {role:?}"
        );
        let generated = &properties["GenerateSecretString"];
        assert_eq!(
            generated["GenerateStringKey"].as_str(),
            Some("password"),
            "{name}"
        );
        assert!(
            generated["PasswordLength"].as_u64().unwrap_or(0) >= 32,
            "{name}: at least 32 characters"
        );
        assert_eq!(
            generated["ExcludePunctuation"].as_bool(),
            Some(true),
            "{name}: letters and digits only, safe in a URL and a shell"
        );
        let host_variable = match &generated["SecretStringTemplate"] {
            Value::Tagged(tagged) => tagged
                .value
                .as_sequence()
                .map(|parts| parts[1]["Host"].clone()),
            _ => None,
        };
        let mut values = given.clone();
        if let Some(host) = &host_variable {
            // The restore test's host: RestoreTestDatabaseHost, or DatabaseHost when empty.
            let (condition, other, same) = if_parts(host).expect("!If for the restore-test host");
            assert_eq!(condition, "RestoreTestOnOtherHost", "{name}");
            assert_eq!(reference(other), Some(parameter("RestoreTestDatabaseHost")));
            assert_eq!(reference(same), Some(parameter("DatabaseHost")));
            let defined = serde_yaml::to_string(&main["Conditions"][condition]).expect("YAML");
            assert!(defined.contains("RestoreTestDatabaseHost"), "{defined}");
            values.insert("Host", given["DatabaseHost"]);
        }
        let text = substituted(&generated["SecretStringTemplate"], &values)
            .unwrap_or_else(|| panic!("{name}: SecretStringTemplate names an unknown value"));
        let mut json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{name}: SecretStringTemplate is not JSON ({e}): {text}"));
        assert!(
            json.get("password").is_none(),
            "{name}: the password is generated"
        );
        json["password"] = serde_json::Value::from("A".repeat(32));
        let url = toc_sis_backup::credentials::parse_secret(name, &json.to_string(), None)
            .unwrap_or_else(|e| panic!("{name}: the functions cannot read it: {e}"));
        assert_eq!(
            url.user,
            role.user(),
            "{name}: the user setup-users creates"
        );
        assert_eq!(url.host, given["DatabaseHost"], "{name}");
        assert_eq!(url.port, 3306, "{name}");
        assert_eq!(url.database.as_deref(), Some("toc_sis"), "{name}");
        assert_eq!(
            host_variable.is_some(),
            role == Role::RestoreTest,
            "{name}: only the restore test may run on another server"
        );
        assert!(
            reference(&properties["KmsKeyId"]).is_some(),
            "{name}: under the stack's key (aws/secretsmanager would be its readers' too, but the stack's key is the one every reader is granted)"
        );
        let output = main["Outputs"]
            .as_mapping()
            .expect("Outputs")
            .values()
            .find(|o| reference(&o["Value"]) == Some(parameter(name)))
            .unwrap_or_else(|| panic!("no output gives {name}'s ARN"));
        assert_eq!(output["Condition"], secret["Condition"], "{name}'s output");
    }
    assert_eq!(
        by_role.len(),
        Role::ALL.len(),
        "a secret for every user setup-users creates: {by_role:?}"
    );

    // Its readers: each job reads its own user's secret, may decrypt it, and reads no other.
    let mut readers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut check_reader =
        |reader: &str, job: &str, secret_arn: &Value, condition: &Value, statements: &[&Value]| {
            let role =
                role_of_job(job).unwrap_or_else(|| panic!("{reader} ({job}) reads a secret"));
            let (secret_name, _) = &by_role[&format!("{role:?}")];
            assert_eq!(
                reference(secret_arn),
                Some(parameter(secret_name)),
                "{reader} ({job}) must read {secret_name}, the {} user's",
                role.user()
            );
            assert_eq!(
                allowed(statements, "secretsmanager:GetSecretValue"),
                vec![parameter(secret_name)],
                "{reader} may read its own secret, and no other"
            );
            let key = reference(&secrets[secret_name]["Properties"]["KmsKeyId"]).expect("KmsKeyId");
            assert!(
                allowed(statements, "kms:Decrypt").contains(&key),
                "{reader} may not decrypt {secret_name} ({key:?}): Secrets Manager would refuse it"
            );
            let secret_condition = &secrets[secret_name]["Condition"];
            assert!(
                secret_condition.is_null() || secret_condition == condition,
                "{reader} exists under {condition:?}, {secret_name} under {secret_condition:?}"
            );
            readers
                .entry(secret_name.clone())
                .or_default()
                .push(reader.to_string());
        };
    for (name, function) in resources(&main, "AWS::Serverless::Function") {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        let statements = function_statements(function);
        let secret = &function["Properties"]["Environment"]["Variables"]["DATABASE_SECRET_ARN"];
        if secret.is_null() {
            assert!(
                allowed(&statements, "secretsmanager:GetSecretValue").is_empty(),
                "{name} connects to no database, yet may read a secret"
            );
            continue;
        }
        check_reader(&name, binary, secret, &function["Condition"], &statements);
    }
    let task = &main["Resources"]["RestoreTestTaskDefinition"];
    let container = &task["Properties"]["ContainerDefinitions"][0];
    let secret = container["Environment"]
        .as_sequence()
        .expect("Environment")
        .iter()
        .find(|v| v["Name"].as_str() == Some("DATABASE_SECRET_ARN"))
        .map(|v| v["Value"].clone())
        .expect("the task's DATABASE_SECRET_ARN");
    let task_role = match reference(&task["Properties"]["TaskRoleArn"]) {
        Some(Reference::GetAtt(role, _)) => role,
        other => panic!("the task role is {other:?}"),
    };
    check_reader(
        "RestoreTestTaskDefinition",
        container["Command"][0].as_str().unwrap_or_default(),
        &secret,
        &task["Condition"],
        &role_statements(&main["Resources"][task_role.as_str()]),
    );
    for secret in secrets.keys() {
        assert!(
            readers.contains_key(secret),
            "{secret}: no job reads it ({readers:?})"
        );
    }
}

/// Where `value` refers to a resource (`!Ref`, `!GetAtt`, `${Name}` in a `!Sub`), each with
/// the conditions of the `!If` branches it sits in (`!C` on the false branch).
fn references_within(
    value: &Value,
    inside: &mut Vec<String>,
    found: &mut Vec<(String, Vec<String>)>,
) {
    let names_in =
        |text: &str, skip: &Value, found: &mut Vec<(String, Vec<String>)>, inside: &[String]| {
            for piece in text.split("${").skip(1) {
                let Some((name, _)) = piece.split_once('}') else {
                    continue;
                };
                let name = name.split('.').next().unwrap_or(name);
                if !name.starts_with('!') && skip[name].is_null() {
                    found.push((name.to_string(), inside.to_vec()));
                }
            }
        };
    match value {
        Value::Tagged(tagged) => match tagged.tag.to_string().trim_start_matches('!') {
            "If" => {
                if let Some((condition, when_true, when_false)) = if_parts(value) {
                    inside.push(condition.to_string());
                    references_within(when_true, inside, found);
                    inside.pop();
                    inside.push(format!("!{condition}"));
                    references_within(when_false, inside, found);
                    inside.pop();
                }
            }
            "Ref" | "GetAtt" => {
                if let Some(Reference::Ref(name) | Reference::GetAtt(name, _)) = reference(value) {
                    found.push((name, inside.clone()));
                }
            }
            "Sub" => match &tagged.value {
                Value::String(text) => names_in(text, &Value::Null, found, inside),
                Value::Sequence(parts) if parts.len() == 2 => {
                    names_in(
                        parts[0].as_str().unwrap_or_default(),
                        &parts[1],
                        found,
                        inside,
                    );
                    references_within(&parts[1], inside, found);
                }
                _ => {}
            },
            _ => references_within(&tagged.value, inside, found),
        },
        Value::Sequence(items) => items
            .iter()
            .for_each(|v| references_within(v, inside, found)),
        Value::Mapping(mapping) => mapping
            .values()
            .for_each(|v| references_within(v, inside, found)),
        _ => {}
    }
}

/// Whether condition `having` holds only when `needed` does: the same, or an `!And` of it.
fn implies(template: &Value, having: &str, needed: &str) -> bool {
    if having == needed {
        return true;
    }
    let Value::Tagged(defined) = &template["Conditions"][having] else {
        return false;
    };
    defined.tag == "And"
        && one_or_many(&defined.value)
            .into_iter()
            .any(|part| match part {
                Value::Tagged(inner) if inner.tag == "Condition" => inner
                    .value
                    .as_str()
                    .is_some_and(|c| implies(template, c, needed)),
                _ => false,
            })
}

/// Issue 27, item 5: the files function and the binlog archive are opt-in (each fails every
/// run where its source is missing): parameters that default to "false" create them, and
/// with them everything that names them (schedule, alarms, the binlog user's secret), and
/// nothing else names them outside an `!If` on their condition; the monitor is told which are
/// deployed, in the words its code reads, so one that is not says "not configured".
#[test]
fn the_files_and_binlog_functions_are_opt_in_and_the_monitor_is_told() {
    use toc_sis_backup::monitor::Configured;
    let main = template("template.yaml");
    let mut opt_in = BTreeMap::new();
    for (parameter_name, condition, binary, variable) in [
        (
            "EnableFileBackups",
            "HasFileBackups",
            "files",
            "MONITOR_FILE_BACKUPS",
        ),
        (
            "EnableBinlogArchive",
            "HasBinlogArchive",
            "binlog",
            "MONITOR_BINLOG_ARCHIVE",
        ),
    ] {
        let definition = &main["Parameters"][parameter_name];
        assert_eq!(
            definition["Default"].as_str(),
            Some("false"),
            "{parameter_name}"
        );
        let allowed_values: Vec<&str> = one_or_many(&definition["AllowedValues"])
            .into_iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(allowed_values, ["true", "false"], "{parameter_name}");
        let Value::Tagged(defined) = &main["Conditions"][condition] else {
            panic!("no {condition} condition");
        };
        let compared = defined.value.as_sequence().expect("!Equals");
        assert!(defined.tag == "Equals", "{condition}");
        assert_eq!(reference(&compared[0]), Some(parameter(parameter_name)));
        assert_eq!(compared[1].as_str(), Some("true"), "{condition}");
        // The monitor reads the parameter's own values.
        assert_eq!(
            Configured::from_setting(variable, Some("true")).ok(),
            Some(Configured::Yes)
        );
        assert_eq!(
            Configured::from_setting(variable, Some("false")).ok(),
            Some(Configured::No)
        );
        let (function, _) = resources(&main, "AWS::Serverless::Function")
            .into_iter()
            .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
            .unwrap_or_else(|| panic!("no {binary} function"));
        opt_in.insert(function, (condition, parameter_name, variable));
    }
    let monitor = resources(&main, "AWS::Serverless::Function")
        .into_values()
        .find(|f| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("monitor"))
        .expect("the monitor");
    let known = variables_the_code_reads();
    for (function, (condition, parameter_name, variable)) in &opt_in {
        assert_eq!(
            main["Resources"][function.as_str()]["Condition"].as_str(),
            Some(*condition),
            "{function} is opt-in"
        );
        assert_eq!(
            reference(&monitor["Properties"]["Environment"]["Variables"][*variable]),
            Some(parameter(parameter_name)),
            "the monitor must be told {parameter_name} in {variable}"
        );
        assert!(
            known.contains(*variable),
            "the monitor's code never reads {variable}"
        );
    }

    // Whatever names a resource under a condition exists under it too, or names it in a branch
    // of an `!If` on it (a reference to a resource that is not there fails the deployment).
    let conditions: BTreeMap<String, String> = main["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter_map(|(name, r)| {
            Some((
                name.as_str()?.to_string(),
                r["Condition"].as_str()?.to_string(),
            ))
        })
        .collect();
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for section in ["Resources", "Outputs"] {
        for (name, item) in main[section].as_mapping().expect(section) {
            let name = name.as_str().unwrap_or_default();
            let mut found = Vec::new();
            references_within(item, &mut Vec::new(), &mut found);
            for (target, inside) in found {
                let Some(needed) = conditions.get(&target) else {
                    continue;
                };
                let holds = |having: &str| implies(&main, having, needed);
                assert!(
                    item["Condition"].as_str().is_some_and(holds)
                        || inside.iter().any(|c| holds(c)),
                    "{section} {name} names {target} outside its condition {needed}"
                );
                named.entry(target).or_default().insert(name.to_string());
            }
        }
    }
    for function in opt_in.keys() {
        let by = named.get(function).cloned().unwrap_or_default();
        let kinds: BTreeSet<&str> = by
            .iter()
            .filter_map(|n| main["Resources"][n.as_str()]["Type"].as_str())
            .collect();
        assert!(
            kinds.contains("AWS::Scheduler::Schedule") && kinds.contains("AWS::CloudWatch::Alarm"),
            "{function}'s schedule and alarms come and go with it: {by:?}"
        );
    }
    assert_eq!(
        main["Resources"]["BinlogUserSecret"]["Condition"].as_str(),
        Some("HasBinlogArchive"),
        "the binlog user's secret only with the archive"
    );
}

/// `*` (any run of characters, `/` included) and `?` (one character), as IAM matches ARNs.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A statement as written, or the statement branch of `!If [Condition, Statement, NoValue]`
/// with its condition.
fn unless_no_value(statement: &Value) -> (Option<&str>, &Value) {
    match if_parts(statement) {
        Some((condition, when_true, when_false)) if is_no_value(when_false) => {
            (Some(condition), when_true)
        }
        _ => (None, statement),
    }
}

/// Whether `statement` allows `action` (directly or by a `service:Prefix*` wildcard).
fn allows(statement: &Value, action: &str) -> bool {
    statement["Effect"].as_str() == Some("Allow")
        && actions(statement)
            .iter()
            .any(|pattern| glob(pattern, action))
}

/// The `!Sub` texts (or plain strings) of the resources that `statements` allow `action` on.
fn allowed_texts<'a>(statements: &[&'a Value], action: &str) -> Vec<&'a str> {
    statements
        .iter()
        .filter(|s| allows(s, action))
        .flat_map(|s| one_or_many(&s["Resource"]))
        .filter_map(sub_text)
        .collect()
}

fn covered(resources: &[&str], arn: &str) -> bool {
    resources.iter().any(|pattern| glob(pattern, arn))
}

/// Issue 26: delete markers replicate only where the role may replicate them (a rule with
/// DeleteMarkerReplication Enabled needs s3:ReplicateDelete on its prefix in the replica, or
/// every such marker fails), and nowhere else (database/ keeps its delete markers to itself).
#[test]
fn the_replication_role_may_replicate_what_each_rule_replicates_and_no_more() {
    let main = template("template.yaml");
    let bucket = resources(&main, "AWS::S3::Bucket")
        .into_values()
        .find(|b| b["Properties"]["ReplicationConfiguration"].is_mapping())
        .expect("the replicated bucket");
    let replication = &bucket["Properties"]["ReplicationConfiguration"];
    let role = match reference(&replication["Role"]) {
        Some(Reference::GetAtt(role, _)) => role,
        other => panic!("the replication role is {other:?}"),
    };
    let statements = role_statements(&main["Resources"][role.as_str()]);
    let rules = replication["Rules"].as_sequence().expect("rules");
    let mut replicated_deletes = 0;
    for rule in rules {
        let id = rule["Id"].as_str().unwrap_or("?");
        let prefix = rule["Filter"]["Prefix"]
            .as_str()
            .unwrap_or_else(|| panic!("rule {id} has no Filter Prefix"));
        let copy = format!("${{ReplicaBucketArn}}/{prefix}some/object");
        for action in ["s3:ReplicateObject", "s3:ReplicateTags"] {
            assert!(
                covered(&allowed_texts(&statements, action), &copy),
                "{role} may not {action} {copy} (rule {id})"
            );
        }
        let deletes = covered(&allowed_texts(&statements, "s3:ReplicateDelete"), &copy);
        match rule["DeleteMarkerReplication"]["Status"].as_str() {
            Some("Enabled") => {
                replicated_deletes += 1;
                assert!(
                    deletes,
                    "rule {id} replicates delete markers, but {role} may not s3:ReplicateDelete {copy}"
                );
            }
            _ => assert!(
                !deletes,
                "rule {id} keeps its delete markers, yet {role} may s3:ReplicateDelete {copy}"
            ),
        }
    }
    assert!(
        replicated_deletes > 0,
        "no rule replicates delete markers any more: say so here"
    );
}

/// The statements of a replica-stack policy whose Sid starts with `sid_prefix`: each grants the
/// source account (only under OtherAccount) and holds an aws:PrincipalArn condition on its role.
/// Every statement naming the source account is checked to be under OtherAccount.
fn cross_account<'a>(document: &'a Value, sid_prefix: &str) -> Vec<&'a Value> {
    let mut found = Vec::new();
    for statement in one_or_many(&document["Statement"]) {
        let (condition, statement) = unless_no_value(statement);
        let sid = statement["Sid"].as_str().unwrap_or_default();
        let principal = sub_text(&statement["Principal"]["AWS"]).unwrap_or_default();
        if principal.contains("${SourceAccountId}") {
            assert_eq!(
                condition,
                Some("OtherAccount"),
                "{sid} grants the source account whether or not it is another one"
            );
        }
        if sid.starts_with(sid_prefix) {
            assert!(
                principal.contains("${SourceAccountId}"),
                "{sid}: principal {principal:?} is not the source account"
            );
            assert!(
                !statement["Condition"]["ArnLike"]["aws:PrincipalArn"].is_null(),
                "{sid} grants the whole source account, not its role"
            );
            found.push(statement);
        }
    }
    found
}

/// The one aws:PrincipalArn condition that `statements` share.
fn role_condition(statements: &[&Value]) -> Value {
    let conditions: BTreeSet<String> = statements
        .iter()
        .map(|s| format!("{:?}", s["Condition"]["ArnLike"]["aws:PrincipalArn"]))
        .collect();
    assert_eq!(
        conditions.len(),
        1,
        "one role, one condition: {conditions:?}"
    );
    statements[0]["Condition"]["ArnLike"]["aws:PrincipalArn"].clone()
}

/// Issue 26: with `SourceAccountId` another account, the replica's bucket and key policies grant
/// the main stack's replication role what replicating needs (the same prefixes as the main
/// stack's rules: objects and tags everywhere, delete markers where a rule replicates them; the
/// versioning check; encrypting under the replica key), and its monitor the manifests it
/// compares; each grant names that account and holds a condition on the role, and none of it
/// exists in one account.
#[test]
fn a_replica_in_another_account_grants_the_source_roles_what_they_need() {
    let main = template("template.yaml");
    let replica = template("replica.yaml");
    assert!(
        !replica["Conditions"]["OtherAccount"].is_null(),
        "replica.yaml: no OtherAccount condition"
    );
    let bucket_policy = resources(&replica, "AWS::S3::BucketPolicy")
        .into_values()
        .find(|p| reference(&p["Properties"]["Bucket"]) == Some(parameter("ReplicaBucket")))
        .expect("the replica bucket's policy");
    let document = &bucket_policy["Properties"]["PolicyDocument"];
    let key_document = &replica["Resources"]["ReplicaKey"]["Properties"]["KeyPolicy"];

    let replication = cross_account(document, "SourceReplicationRole");
    let replication_key = cross_account(key_document, "SourceAccountReplicates");
    assert!(!replication.is_empty() && !replication_key.is_empty());
    let role = role_condition(&[replication.clone(), replication_key.clone()].concat());
    assert!(
        format!("{role:?}").contains("SourceReplicationRoleArn"),
        "the replication grants do not name the SourceReplicationRoleArn parameter: {role:?}"
    );
    for action in ["kms:Encrypt", "kms:GenerateDataKey"] {
        assert!(
            replication_key.iter().any(|s| allows(s, action)),
            "the replica key does not let the source's replication role {action}"
        );
    }
    assert!(
        replication
            .iter()
            .any(|s| allows(s, "s3:GetBucketVersioning")
                && reference(&s["Resource"]) == Some(arn_of("ReplicaBucket"))),
        "the source's replication role cannot read the replica's versioning"
    );
    let rules = main["Resources"]["BackupBucket"]["Properties"]["ReplicationConfiguration"]
        ["Rules"]
        .as_sequence()
        .expect("the main stack's replication rules");
    for rule in rules {
        let prefix = rule["Filter"]["Prefix"].as_str().expect("rule prefix");
        let copy = format!("${{ReplicaBucket.Arn}}/{prefix}some/object");
        for action in ["s3:ReplicateObject", "s3:ReplicateTags"] {
            assert!(
                covered(&allowed_texts(&replication, action), &copy),
                "the replica bucket does not let the source's replication role {action} {copy}"
            );
        }
        assert_eq!(
            covered(&allowed_texts(&replication, "s3:ReplicateDelete"), &copy),
            rule["DeleteMarkerReplication"]["Status"].as_str() == Some("Enabled"),
            "s3:ReplicateDelete on {copy} must match the main stack's rule for {prefix}"
        );
    }

    let monitor = cross_account(document, "SourceMonitor");
    let monitor_key = cross_account(key_document, "SourceAccountMonitor");
    let monitor_role = role_condition(&[monitor.clone(), monitor_key.clone()].concat());
    assert_ne!(
        monitor_role, role,
        "the monitor's grants must name the monitor"
    );
    let readable = allowed_texts(&monitor, "s3:GetObject");
    assert!(covered(
        &readable,
        "${ReplicaBucket.Arn}/database/daily/20250101T020000Z/manifest.json"
    ));
    assert!(
        !covered(
            &readable,
            "${ReplicaBucket.Arn}/database/daily/20250101T020000Z/students.sql.gz"
        ) && !covered(&readable, "${ReplicaBucket.Arn}/files/blobs/ab/cdef"),
        "the source's monitor may read more of the replica than manifests: {readable:?}"
    );
    assert!(monitor_key.iter().any(|s| allows(s, "kms:Decrypt")));
    for statement in monitor_key.iter().chain(&replication_key) {
        assert!(
            !statement["Condition"]["StringEquals"]["kms:ViaService"].is_null(),
            "{:?}: the source's roles use the replica key through S3 only",
            statement["Sid"]
        );
    }

    // The main stack names both roles for the replica stack's parameters, same names.
    for (name, output) in main["Outputs"].as_mapping().expect("Outputs") {
        let name = name.as_str().unwrap_or_default();
        let description = output["Description"].as_str().unwrap_or_default();
        let Some((_, rest)) = description.split_once("replica stack's ") else {
            continue;
        };
        assert_eq!(rest.split_whitespace().next(), Some(name), "output {name}");
        assert_eq!(
            replica["Parameters"][name]["Default"].as_str(),
            Some(""),
            "replica parameter {name} must exist and default to empty (one account needs none)"
        );
    }
    for name in ["SourceReplicationRoleArn", "SourceMonitorRoleArn"] {
        assert!(
            main["Outputs"][name].is_mapping(),
            "main stack output {name}"
        );
    }
}

/// Issue 26: the monitor reads what its checks read (the keys the code names) and not the
/// uploaded documents, the binlog or anything else; it writes only its own state.
#[test]
fn the_monitor_reads_only_the_prefixes_it_checks() {
    use toc_sis_backup::layout::{
        BINLOG_HEAD_KEY as HEAD_KEY, BLOBS_PREFIX, DAILY_PREFIX, INCREMENTAL_PREFIX, INDEX_KEY,
        LOCKS_PREFIX, MANIFEST_NAME, MONITOR_STATE_KEY as STATE_KEY,
        RESTORE_TEST_LATEST_KEY as LATEST_KEY, SEGMENT_PREFIX, SNAPSHOTS_PREFIX,
    };

    let main = template("template.yaml");
    let (name, monitor) = resources(&main, "AWS::Serverless::Function")
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("monitor"))
        .expect("the monitor function");
    let statements = function_statements(monitor);
    let readable = allowed_texts(&statements, "s3:GetObject");
    let here = |key: &str| format!("${{BackupBucket.Arn}}/{key}");
    let there = |key: &str| format!("${{ReplicaBucketArn}}/{key}");
    let id = "20250101T020000Z";
    let needed = [
        here(INDEX_KEY),
        here(HEAD_KEY),
        here(STATE_KEY),
        here(LATEST_KEY),
        here(&format!("{DAILY_PREFIX}{id}/{MANIFEST_NAME}")),
        here(&format!("{INCREMENTAL_PREFIX}{id}/{MANIFEST_NAME}")),
        // the daily deep check re-reads the latest chain's files
        here(&format!("{DAILY_PREFIX}{id}/toc_sis.students.sql.gz")),
        here(&format!("{INCREMENTAL_PREFIX}{id}/toc_sis.grades.sql.gz")),
        here(&format!("{SNAPSHOTS_PREFIX}uploads/{id}.json.gz")),
        there(&format!("{DAILY_PREFIX}{id}/{MANIFEST_NAME}")),
        there(&format!("{INCREMENTAL_PREFIX}{id}/{MANIFEST_NAME}")),
    ];
    for key in &needed {
        assert!(
            covered(&readable, key),
            "{name} cannot read {key}, which its checks read ({readable:?})"
        );
    }
    let private = [
        here(&format!("{BLOBS_PREFIX}ab/cdef0123")),
        here(&format!("{LOCKS_PREFIX}uploads")),
        here(&format!("{SEGMENT_PREFIX}{id}/events.binlog.gz")),
        here("something/else"),
        there(&format!("{DAILY_PREFIX}{id}/toc_sis.students.sql.gz")),
        there(&format!("{BLOBS_PREFIX}ab/cdef0123")),
    ];
    for key in &private {
        assert!(
            !covered(&readable, key),
            "{name} may read {key}, which no check needs ({readable:?})"
        );
    }
    for action in ["s3:GetObjectVersion", "s3:DeleteObject", "s3:PutObjectAcl"] {
        assert!(
            allowed_texts(&statements, action).is_empty(),
            "{name} may {action}"
        );
    }
    assert_eq!(
        allowed_texts(&statements, "s3:PutObject"),
        vec![here(STATE_KEY).as_str()],
        "{name} writes its own state, nothing else"
    );
    assert!(
        covered(
            &allowed_texts(&statements, "s3:PutObjectTagging"),
            &here(STATE_KEY)
        ),
        "{name} writes its state with the store's tags, which needs s3:PutObjectTagging"
    );
}

/// Issue 26: every AWS service allowed in by a resource, key or trust policy is held to this
/// account's own resources (aws:SourceAccount / aws:SourceArn naming this account), so no other
/// account can make the service act here for it (the confused deputy).
#[test]
fn every_service_principal_is_held_to_this_account() {
    /// Trust policies whose service is not documented to send the source keys when it assumes
    /// the role: their conditions may be `…IfExists` (binding whenever the keys are sent), with
    /// the reason. Everywhere else an `IfExists` would let a request without the keys through.
    const IF_EXISTS: [(&str, &str, &str); 2] = [
        (
            "ReplicationRole",
            "s3.amazonaws.com",
            "S3 documents no source context for replication's AssumeRole; the role cannot be \
             passed to S3 from another account",
        ),
        (
            "RestoreTestExecutionRole",
            "ecs-tasks.amazonaws.com",
            "ECS documents source conditions for task roles only; the role cannot be passed to \
             ECS from another account",
        ),
    ];
    fn statements<'a>(value: &'a Value, into: &mut Vec<&'a Value>) {
        match value {
            Value::Mapping(mapping) => {
                if mapping.contains_key("Principal") {
                    into.push(value);
                }
                mapping.values().for_each(|v| statements(v, into));
            }
            Value::Sequence(items) => items.iter().for_each(|v| statements(v, into)),
            Value::Tagged(tagged) => statements(&tagged.value, into),
            _ => {}
        }
    }
    let this_account = |value: &Value| {
        reference(value) == Some(parameter("AWS::AccountId"))
            || sub_text(value).is_some_and(|text| text.contains("${AWS::AccountId}"))
    };
    let mut checked = BTreeSet::new();
    for file in ["template.yaml", "replica.yaml"] {
        let stack = template(file);
        for (name, resource) in stack["Resources"].as_mapping().expect("Resources") {
            let name = name.as_str().unwrap_or_default();
            let mut found = Vec::new();
            statements(&resource["Properties"], &mut found);
            for statement in found {
                for service in one_or_many(&statement["Principal"]["Service"])
                    .into_iter()
                    .filter_map(Value::as_str)
                {
                    if service == "lambda.amazonaws.com" {
                        continue;
                    }
                    let if_exists_allowed = IF_EXISTS
                        .iter()
                        .any(|(r, s, _)| *r == name && *s == service);
                    let mut sources = Vec::new();
                    if let Some(operators) = statement["Condition"].as_mapping() {
                        for (operator, keys) in operators {
                            let operator = operator.as_str().unwrap_or_default();
                            for (key, value) in keys.as_mapping().into_iter().flatten() {
                                let key = key.as_str().unwrap_or_default();
                                if matches!(
                                    key,
                                    "aws:SourceAccount"
                                        | "aws:SourceArn"
                                        | "kms:EncryptionContext:aws:logs:arn"
                                ) {
                                    assert!(
                                        one_or_many(value).into_iter().all(this_account),
                                        "{file} {name}: {service}'s {key} is not this account: {value:?}"
                                    );
                                    assert!(
                                        !operator.ends_with("IfExists") || if_exists_allowed,
                                        "{file} {name}: {service}'s {key} is {operator}, which a \
                                         request without the key passes"
                                    );
                                    sources.push(key);
                                }
                            }
                        }
                    }
                    assert!(
                        !sources.is_empty(),
                        "{file} {name}: {service} has no aws:SourceAccount/aws:SourceArn condition"
                    );
                    checked.insert(format!("{name} {service}"));
                }
            }
        }
    }
    for expected in [
        "BackupKey cloudwatch.amazonaws.com",
        "ReplicationRole s3.amazonaws.com",
        "ScheduleDeadLettersPolicy scheduler.amazonaws.com",
        "SchedulerRole scheduler.amazonaws.com",
        "AccessLogBucketPolicy logging.s3.amazonaws.com",
        "ReplicaAccessLogsPolicy logging.s3.amazonaws.com",
        "RestoreTestTaskRole ecs-tasks.amazonaws.com",
        "RestoreTestExecutionRole ecs-tasks.amazonaws.com",
    ] {
        assert!(
            checked.contains(expected),
            "{expected} was not checked: {checked:?}"
        );
    }
}

// Issue 27, item 3: the backup bucket's policy, judged by IAM's own condition semantics against
// the requests the CLI and the functions really send (recorded by a proxy in front of moto).

/// The stack's BackupKey in these tests: what `!GetAtt BackupKey.Arn` resolves to.
const BACKUP_KEY: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/8f3c1d2e-0000-4000-8000-backupkey001";
const OTHER_KEY: &str =
    "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0000-4000-8000-otherkey0001";

/// The policy as it stood before issue 27: `...IfExists` holds when the header is absent, so
/// both statements refused every write without encryption headers, multipart parts included.
const OLD_BUCKET_POLICY: &str = r#"
Statement:
  - Sid: DenyInsecureTransport
    Effect: Deny
    Principal: "*"
    Action: "s3:*"
    Resource:
      - !GetAtt BackupBucket.Arn
      - !Sub "${BackupBucket.Arn}/*"
    Condition:
      Bool:
        aws:SecureTransport: "false"
  - Sid: DenyWritesNotEncryptedWithKms
    Effect: Deny
    Principal: "*"
    Action: s3:PutObject
    Resource: !Sub "${BackupBucket.Arn}/*"
    Condition:
      StringNotEqualsIfExists:
        s3:x-amz-server-side-encryption: aws:kms
  - Sid: DenyWritesWithAnotherKmsKey
    Effect: Deny
    Principal: "*"
    Action: s3:PutObject
    Resource: !Sub "${BackupBucket.Arn}/*"
    Condition:
      StringNotEqualsIfExists:
        s3:x-amz-server-side-encryption-aws-kms-key-id: !GetAtt BackupKey.Arn
"#;

/// One statement of a bucket policy, the template's references made concrete.
#[derive(Debug)]
struct PolicyStatement {
    sid: String,
    effect: String,
    actions: Vec<String>,
    resources: Vec<String>,
    /// (operator, context key, values); the statement applies when every one holds.
    conditions: Vec<(String, String, Vec<String>)>,
}

/// What IAM sees of one request: the action it is authorized as, its resource, its context.
#[derive(Debug, Clone)]
struct PolicyRequest {
    action: String,
    resource: String,
    context: BTreeMap<String, String>,
}

/// A policy value as IAM receives it for `bucket`: `!GetAtt BackupBucket.Arn`,
/// `!Sub "${BackupBucket.Arn}/*"`, `!GetAtt BackupKey.Arn` ([`BACKUP_KEY`]), text, booleans.
fn policy_text(value: &Value, bucket: &str) -> String {
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    if let Some(reference) = reference(value) {
        return match reference {
            Reference::GetAtt(name, attribute) if attribute == "Arn" && name == "BackupBucket" => {
                bucket_arn
            }
            Reference::GetAtt(name, attribute) if attribute == "Arn" && name == "BackupKey" => {
                BACKUP_KEY.to_string()
            }
            other => panic!("the bucket policy names {other:?}, which this test cannot resolve"),
        };
    }
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => {
            let text = tagged
                .value
                .as_str()
                .expect("!Sub text")
                .replace("${BackupBucket.Arn}", &bucket_arn);
            assert!(
                !text.contains("${"),
                "unresolved !Sub in the bucket policy: {text}"
            );
            text
        }
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        other => panic!("a bucket policy value this test cannot read: {other:?}"),
    }
}

fn policy_statements(document: &Value, bucket: &str) -> Vec<PolicyStatement> {
    one_or_many(&document["Statement"])
        .into_iter()
        .map(|statement| {
            let sid = statement["Sid"].as_str().unwrap_or("(no Sid)").to_string();
            for unsupported in ["NotAction", "NotResource", "NotPrincipal"] {
                assert!(
                    statement[unsupported].is_null(),
                    "{sid}: {unsupported} is not evaluated by this test"
                );
            }
            assert_eq!(
                statement["Principal"].as_str(),
                Some("*"),
                "{sid}: the evaluator takes every statement to be for everyone"
            );
            let mut conditions = Vec::new();
            if let Some(block) = statement["Condition"].as_mapping() {
                for (operator, keys) in block {
                    // An unquoted `Null:` is YAML's null, not the operator: quote it.
                    let operator = operator.as_str().unwrap_or_else(|| {
                        panic!("{sid}: condition operator {operator:?} is not text")
                    });
                    for (key, values) in keys.as_mapping().expect("condition keys") {
                        conditions.push((
                            operator.to_string(),
                            key.as_str().expect("condition key").to_string(),
                            one_or_many(values)
                                .into_iter()
                                .map(|v| policy_text(v, bucket))
                                .collect(),
                        ));
                    }
                }
            }
            PolicyStatement {
                effect: statement["Effect"].as_str().expect("Effect").to_string(),
                actions: one_or_many(&statement["Action"])
                    .into_iter()
                    .map(|a| a.as_str().expect("action").to_string())
                    .collect(),
                resources: one_or_many(&statement["Resource"])
                    .into_iter()
                    .map(|r| policy_text(r, bucket))
                    .collect(),
                conditions,
                sid,
            }
        })
        .collect()
}

/// The template's BackupBucketPolicy, for a bucket called `bucket`.
fn template_bucket_policy(bucket: &str) -> Vec<PolicyStatement> {
    let main = template("template.yaml");
    let policy = resources(&main, "AWS::S3::BucketPolicy")
        .into_values()
        .find(|p| reference(&p["Properties"]["Bucket"]) == Some(parameter("BackupBucket")))
        .expect("the backup bucket's policy");
    policy_statements(&policy["Properties"]["PolicyDocument"], bucket)
}

fn old_bucket_policy(bucket: &str) -> Vec<PolicyStatement> {
    let document: Value = serde_yaml::from_str(OLD_BUCKET_POLICY).expect("old policy YAML");
    policy_statements(&document, bucket)
}

/// Whether one condition holds, by IAM's rules (IAM User Guide, "IAM JSON policy elements:
/// Condition operators", and "Conditions with multiple context keys or values"):
/// - `Null` "true" holds when the key is absent from the request context, "false" when present;
/// - `...IfExists` holds when the key is absent, else is the operator without the suffix;
/// - any other operator on an absent key is false, except a negated one (StringNotEquals,
///   ArnNotLike, ...), which is true: "the key is not matched";
/// - several values: one matching is enough (OR); for a negated operator, none may (NOR).
///
/// Operators this test does not know fail it, rather than being guessed.
fn condition_holds(
    operator: &str,
    key: &str,
    values: &[String],
    context: &BTreeMap<String, String>,
) -> bool {
    assert!(
        !operator.contains(':'),
        "set operators ({operator}) are not evaluated by this test"
    );
    let present = context.get(key);
    if operator == "Null" {
        return values
            .iter()
            .any(|v| match v.to_ascii_lowercase().as_str() {
                "true" => present.is_none(),
                "false" => present.is_some(),
                other => panic!("Null takes true or false, not {other}"),
            });
    }
    let (base, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    // (does a policy value match the request's value, is the operator negated)
    let (matches, negated): (fn(&str, &str) -> bool, bool) = match base {
        "StringEquals" => (|p, v| p == v, false),
        "StringNotEquals" => (|p, v| p == v, true),
        "StringEqualsIgnoreCase" => (|p, v| p.eq_ignore_ascii_case(v), false),
        "StringNotEqualsIgnoreCase" => (|p, v| p.eq_ignore_ascii_case(v), true),
        "StringLike" => (glob, false),
        "StringNotLike" => (glob, true),
        "ArnEquals" | "ArnLike" => (glob, false),
        "ArnNotEquals" | "ArnNotLike" => (glob, true),
        "Bool" => (|p, v| p.eq_ignore_ascii_case(v), false),
        other => panic!("the condition operator {other} is not evaluated by this test; add it with IAM's semantics"),
    };
    let Some(value) = present else {
        return if_exists || negated;
    };
    values.iter().any(|p| matches(p, value)) != negated
}

/// The Sids of the Deny statements that refuse `request` (a bucket policy can only add
/// denials to what the caller's role allows).
fn denials(statements: &[PolicyStatement], request: &PolicyRequest) -> Vec<String> {
    let action = request.action.to_ascii_lowercase();
    statements
        .iter()
        .filter(|s| s.effect == "Deny")
        .filter(|s| {
            s.actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action))
        })
        .filter(|s| s.resources.iter().any(|r| glob(r, &request.resource)))
        .filter(|s| {
            s.conditions.iter().all(|(operator, key, values)| {
                condition_holds(operator, key, values, &request.context)
            })
        })
        .map(|s| s.sid.clone())
        .collect()
}

/// What IAM sees of a recorded S3 request (path-style, as the tests address moto). The action
/// is the one S3 authorizes it as ("Actions, resources, and condition keys for Amazon S3"):
/// UploadPart, CreateMultipartUpload, CompleteMultipartUpload and CopyObject are s3:PutObject.
/// The encryption condition keys are the request's headers of those names; a write the test
/// cannot place is an error, so a new kind of request is looked at rather than passed.
fn policy_request(
    recorded: &crate::common::fault_proxy::Recorded,
) -> Result<PolicyRequest, String> {
    let (path, query) = recorded
        .target
        .split_once('?')
        .unwrap_or((recorded.target.as_str(), ""));
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let names: BTreeSet<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(p))
        .collect();
    let has = |name: &str| names.contains(name);
    let only = |allowed: &[&str]| names.iter().all(|n| *n == "x-id" || allowed.contains(n));
    let unknown = || {
        format!(
            "{} {}: no S3 action known for it",
            recorded.method, recorded.target
        )
    };
    let action = match (recorded.method.as_str(), key.is_empty()) {
        ("GET", true) if has("location") => "GetBucketLocation",
        ("GET", true) if has("encryption") => "GetEncryptionConfiguration",
        ("GET", true) if has("lifecycle") => "GetLifecycleConfiguration",
        ("GET", true) if has("uploads") => "ListBucketMultipartUploads",
        ("GET", true) if has("versions") => "ListBucketVersions",
        // ListObjects(V2), HeadBucket.
        ("GET" | "HEAD", true) => "ListBucket",
        // DeleteObjects is authorized key by key as s3:DeleteObject.
        ("POST", true) if only(&["delete"]) && has("delete") => "DeleteObject",
        ("PUT", false) if only(&["tagging"]) && has("tagging") => "PutObjectTagging",
        ("PUT", false) if only(&["retention"]) && has("retention") => "PutObjectRetention",
        ("PUT", false) if only(&["legal-hold"]) && has("legal-hold") => "PutObjectLegalHold",
        // PutObject, CopyObject, and UploadPart (partNumber, uploadId).
        ("PUT", false) if only(&["partNumber", "uploadId"]) => "PutObject",
        // CreateMultipartUpload (uploads), CompleteMultipartUpload (uploadId).
        ("POST", false)
            if only(&["uploads", "uploadId"]) && (has("uploads") || has("uploadId")) =>
        {
            "PutObject"
        }
        ("POST", false) if only(&["restore", "versionId"]) && has("restore") => "RestoreObject",
        ("DELETE", false) if only(&["uploadId"]) && has("uploadId") => "AbortMultipartUpload",
        ("DELETE", false) if only(&["versionId"]) && has("versionId") => "DeleteObjectVersion",
        ("DELETE", false) if only(&[]) => "DeleteObject",
        ("GET", false) if has("tagging") => "GetObjectTagging",
        ("GET", false) if has("retention") => "GetObjectRetention",
        ("GET", false) if has("uploadId") => "ListMultipartUploadParts",
        ("GET", false) if has("versionId") => "GetObjectVersion",
        ("GET" | "HEAD", false) => "GetObject",
        _ => return Err(unknown()),
    };
    let mut context = BTreeMap::new();
    // The tests talk plain HTTP to moto on loopback; in AWS every request of the SDK is HTTPS,
    // and IAM's aws:SecureTransport then says true.
    context.insert("aws:SecureTransport".to_string(), "true".to_string());
    for name in [
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
    ] {
        if let Some(value) = recorded.header(name) {
            context.insert(format!("s3:{name}"), value.to_string());
        }
    }
    Ok(PolicyRequest {
        action: format!("s3:{action}"),
        resource: if key.is_empty() {
            format!("arn:aws:s3:::{bucket}")
        } else {
            format!("arn:aws:s3:::{bucket}/{key}")
        },
        context,
    })
}

fn recorded(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> crate::common::fault_proxy::Recorded {
    crate::common::fault_proxy::Recorded {
        method: method.into(),
        target: target.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A PutObject into the backup bucket with these headers.
fn put_object(headers: &[(&str, &str)]) -> PolicyRequest {
    policy_request(&recorded(
        "PUT",
        "/toc-policy/college/database/daily/x/manifest.json?x-id=PutObject",
        headers,
    ))
    .expect("a PutObject")
}

/// The headers of a write naming SSE-KMS with `key`.
fn named(key: &str) -> [(&'static str, &str); 2] {
    [
        ("x-amz-server-side-encryption", "aws:kms"),
        ("x-amz-server-side-encryption-aws-kms-key-id", key),
    ]
}

#[test]
fn the_evaluator_follows_iams_rules_for_absent_keys() {
    let context = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let holds = |operator: &str, values: &[&str], pairs: &[(&str, &str)]| {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        condition_holds(operator, "k", &values, &context(pairs))
    };
    let absent: &[(&str, &str)] = &[];
    // Absent keys: plain operators false, negated ones true, ...IfExists true, Null as asked.
    assert!(!holds("StringEquals", &["a"], absent));
    assert!(holds("StringNotEquals", &["a"], absent));
    assert!(holds("StringEqualsIfExists", &["a"], absent));
    assert!(holds("StringNotEqualsIfExists", &["a"], absent));
    assert!(!holds("Bool", &["false"], absent));
    assert!(holds("ArnNotEquals", &["arn:aws:kms:*"], absent));
    assert!(holds("Null", &["true"], absent));
    assert!(!holds("Null", &["false"], absent));
    // Present keys: compared; several values OR, negated NOR.
    let a = &[("k", "a")];
    assert!(!holds("Null", &["true"], a));
    assert!(holds("Null", &["false"], a));
    assert!(holds("StringEquals", &["b", "a"], a));
    assert!(!holds("StringNotEquals", &["b", "a"], a));
    assert!(holds("StringNotEquals", &["b", "c"], a));
    assert!(!holds("StringNotEqualsIfExists", &["a"], a));
    assert!(holds("Bool", &["TRUE"], &[("k", "true")]));
    assert!(holds(
        "ArnLike",
        &["arn:aws:s3:::b/*"],
        &[("k", "arn:aws:s3:::b/x/y")]
    ));
    // Every key under one operator, and every operator, must hold.
    let both = [PolicyStatement {
        sid: "both".into(),
        effect: "Deny".into(),
        actions: vec!["s3:Put*".into()],
        resources: vec!["arn:aws:s3:::b/*".into()],
        conditions: vec![
            ("Null".into(), "x".into(), vec!["false".into()]),
            ("StringNotEquals".into(), "y".into(), vec!["1".into()]),
        ],
    }];
    let request = |pairs: &[(&str, &str)]| PolicyRequest {
        action: "s3:PutObject".into(),
        resource: "arn:aws:s3:::b/key".into(),
        context: context(pairs),
    };
    assert_eq!(
        denials(&both, &request(&[("x", "1"), ("y", "2")])),
        ["both"]
    );
    assert!(denials(&both, &request(&[("y", "2")])).is_empty());
    assert!(denials(&both, &request(&[("x", "1"), ("y", "1")])).is_empty());
}

/// What the bucket policy refuses: only writes that name an encryption other than this stack's
/// BackupKey. A write without headers (the CLI without BACKUP_KMS_KEY_ID, every multipart part)
/// gets the bucket default, BackupKey, and passes.
#[test]
fn the_bucket_policy_refuses_only_writes_that_name_another_encryption() {
    let policy = template_bucket_policy("toc-policy");
    let refused = |request: &PolicyRequest| !denials(&policy, request).is_empty();
    let part = policy_request(&recorded(
        "PUT",
        "/toc-policy/college/database/daily/x/data/1.sql.gz?x-id=UploadPart&partNumber=2&uploadId=abc",
        &[],
    ))
    .expect("UploadPart");
    assert_eq!(
        part.action, "s3:PutObject",
        "UploadPart is authorized as s3:PutObject"
    );
    let complete = policy_request(&recorded(
        "POST",
        "/toc-policy/college/database/daily/x/data/1.sql.gz?uploadId=abc",
        &[],
    ))
    .expect("CompleteMultipartUpload");

    assert!(
        !refused(&put_object(&[])),
        "a write without headers gets the bucket default"
    );
    assert!(
        !refused(&part),
        "multipart parts never carry encryption headers"
    );
    assert!(!refused(&complete));
    assert!(!refused(&put_object(&named(BACKUP_KEY))));
    assert!(
        refused(&put_object(&[("x-amz-server-side-encryption", "AES256")])),
        "AES256 is not under BackupKey"
    );
    assert!(
        refused(&put_object(&[("x-amz-server-side-encryption", "aws:kms")])),
        "SSE-KMS without a key id gets the account's aws/s3 key, not the bucket default"
    );
    assert!(refused(&put_object(&named(OTHER_KEY))), "another key");
    assert!(
        refused(&put_object(&[
            ("x-amz-server-side-encryption", "aws:kms:dsse"),
            ("x-amz-server-side-encryption-aws-kms-key-id", BACKUP_KEY),
        ])),
        "DSSE-KMS is not what replication selects"
    );
    assert!(
        refused(&put_object(&[(
            "x-amz-server-side-encryption-aws-kms-key-id",
            OTHER_KEY
        )])),
        "a key id alone, naming another key"
    );
    let mut create_upload = policy_request(&recorded(
        "POST",
        "/toc-policy/college/database/daily/x/data/1.sql.gz?uploads&x-id=CreateMultipartUpload",
        &named(OTHER_KEY),
    ))
    .expect("CreateMultipartUpload");
    assert!(
        refused(&create_upload),
        "a multipart upload under another key"
    );
    create_upload
        .context
        .remove("s3:x-amz-server-side-encryption-aws-kms-key-id");
    create_upload
        .context
        .remove("s3:x-amz-server-side-encryption");
    assert!(!refused(&create_upload));
    // Plain HTTP is refused for everything, reads included.
    let mut read = policy_request(&recorded(
        "GET",
        "/toc-policy/college/x?x-id=GetObject",
        &[],
    ))
    .expect("GetObject");
    assert!(!refused(&read));
    read.context
        .insert("aws:SecureTransport".into(), "false".into());
    assert_eq!(denials(&policy, &read), ["DenyInsecureTransport"]);
}

/// Proof that the checks above and below can fail: the policy before issue 27 refused every
/// write without encryption headers, multipart parts too.
#[test]
fn the_old_bucket_policy_refused_every_write_without_encryption_headers() {
    let old = old_bucket_policy("toc-policy");
    assert_eq!(
        denials(&old, &put_object(&[])),
        [
            "DenyWritesNotEncryptedWithKms",
            "DenyWritesWithAnotherKmsKey"
        ]
    );
    let part = policy_request(&recorded(
        "PUT",
        "/toc-policy/college/x?partNumber=1&uploadId=abc&x-id=UploadPart",
        &[],
    ))
    .expect("UploadPart");
    assert!(!denials(&old, &part).is_empty());
    // It refused SSE-KMS without a key id only as it refused every write without one.
    assert_eq!(
        denials(
            &old,
            &put_object(&[("x-amz-server-side-encryption", "aws:kms")])
        ),
        ["DenyWritesWithAnotherKmsKey"]
    );
}

/// Runs `toc-backup` with `env` only: no encryption setting leaks in from the shell running the
/// tests.
fn policy_cli(args: &[&str], env: &[(&str, &str)]) {
    let output = std::process::Command::new(crate::common::BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("BACKUP_STORE")
        .env_remove("BACKUP_KMS_KEY_ID")
        .env_remove("BACKUP_SSE")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run toc-backup");
    assert!(
        output.status.success(),
        "toc-backup {args:?} failed:\n{}",
        crate::common::text(&output)
    );
}

fn sample_event(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("events").join(name)).expect("sample event");
    serde_json::from_str(&text).expect("event JSON")
}

/// Environment for the jobs the policy test runs.
type PolicyEnv = Vec<(&'static str, String)>;

/// One way the jobs run against a new bucket in the policy test.
struct PolicyScenario {
    what: &'static str,
    /// The bucket's default SSE-KMS key (bucket key on, as the stack's), or none set.
    default_key: Option<&'static str>,
    /// BACKUP_KMS_KEY_ID set to BackupKey's ARN, as the template sets it for every function.
    key_exported: bool,
    /// The Lambda binaries rather than the CLI.
    functions: bool,
}

/// Every CLI command that writes to a store, as an operator runs them; answers how many ran.
fn run_cli_jobs(env: &PolicyEnv, store: &str, url: &str, server: &str, uploads: &str) -> usize {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let commands: [&[&str]; 6] = [
        &["dump", "--database-url", url, "--store", store],
        &[
            "incremental",
            "--database-url",
            url,
            "--store",
            store,
            "--tables",
            "grades",
        ],
        &["binlog", "archive", "--database-url", url, "--store", store],
        &["files", "backup", "--store", store, "--from", uploads],
        &["restore-test", "--database-url", server, "--store", store],
        &["monitor", "--store", store],
    ];
    for args in commands {
        policy_cli(args, &env);
    }
    commands.len()
}

/// Every Lambda binary, one scheduled invocation each, in the order a night runs them; answers
/// how many ran.
async fn run_functions(
    env: &PolicyEnv,
    store: &str,
    url: &str,
    server: &str,
    uploads: &str,
) -> usize {
    let with = |extra: &[(&'static str, String)]| -> PolicyEnv {
        let mut all = env.clone();
        all.push(("BACKUP_STORE", store.to_string()));
        all.extend_from_slice(extra);
        all
    };
    let database = |url: &str| ("DATABASE_URL", url.to_string());
    let sources = serde_json::json!([{"name": "uploads", "from": uploads}]).to_string();
    let functions: Vec<(&str, PolicyEnv, &str)> = vec![
        (
            env!("CARGO_BIN_EXE_dump"),
            with(&[database(url)]),
            "dump-scheduled.json",
        ),
        (
            env!("CARGO_BIN_EXE_incremental-backup"),
            with(&[database(url), ("INCREMENTAL_TABLES", "grades".into())]),
            "incremental-scheduled.json",
        ),
        (
            env!("CARGO_BIN_EXE_binlog"),
            with(&[database(url)]),
            "binlog-scheduled.json",
        ),
        (
            env!("CARGO_BIN_EXE_files"),
            with(&[("FILES_SOURCES", sources)]),
            "files-scheduled.json",
        ),
        (
            env!("CARGO_BIN_EXE_restore-test"),
            with(&[database(server)]),
            "restore-test-scheduled.json",
        ),
        (
            env!("CARGO_BIN_EXE_monitor"),
            with(&[]),
            "monitor-scheduled.json",
        ),
    ];
    for (binary, env, event) in &functions {
        let crate::common::lambda_api::Outcome { path, body } =
            crate::common::lambda_api::invoke_once(binary, env, sample_event(event)).await;
        assert!(path.ends_with("/response"), "{binary} failed: {body}");
    }
    functions.len()
}

/// Issue 27, item 3: every request the CLI and the functions send to S3, recorded by a proxy in
/// front of moto, judged against the template's bucket policy with IAM's condition semantics:
/// a dump big enough for a multipart upload, an incremental, a binlog archive, a file snapshot,
/// a restore test and the monitor, as an operator runs them (BACKUP_KMS_KEY_ID not exported,
/// with the bucket's default unreadable or SSE-KMS BackupKey; exported), and as the functions
/// run them, configured as the template configures them. None may be refused; the old policy
/// refused some in each case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_cli_and_the_functions_send_passes_the_bucket_policy() {
    use crate::common::fault_proxy::{FaultProxy, Mode};
    use mysql_async::prelude::Queryable;

    let source = crate::common::unique_name("policy");
    crate::common::create_database(&source).await;
    crate::common::connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE grades (id INT PRIMARY KEY, grade INT,
               updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
             INSERT INTO grades (id, grade) SELECT seq, seq % 100 FROM seq_1_to_500;
             CREATE TABLE attachments (id INT PRIMARY KEY, body BLOB NOT NULL);
             INSERT INTO attachments SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_7000;",
        )
        .await
        .expect("fixture");
    let uploads = tempfile::tempdir().expect("uploads");
    std::fs::write(uploads.path().join("cv.pdf"), b"%PDF-1.7").expect("upload");
    let uploads_text = uploads.path().to_string_lossy().into_owned();
    let url = crate::common::url_for(&source);
    let server = crate::common::server_url();
    let proxy = FaultProxy::start(Mode::Clean).await;
    proxy.record();
    let s3 = crate::common::aws::s3().await;

    // The template hands every function BackupKey's ARN; the functions below get the same.
    let main = template("template.yaml");
    assert_eq!(
        reference(&main["Globals"]["Function"]["Environment"]["Variables"]["BACKUP_KMS_KEY_ID"]),
        Some(arn_of("BackupKey"))
    );

    let scenarios = [
        PolicyScenario {
            what: "CLI, no key exported, bucket default not readable",
            default_key: None,
            key_exported: false,
            functions: false,
        },
        PolicyScenario {
            what: "CLI, no key exported, bucket default BackupKey",
            default_key: Some(BACKUP_KEY),
            key_exported: false,
            functions: false,
        },
        PolicyScenario {
            what: "CLI, BACKUP_KMS_KEY_ID exported",
            default_key: Some(BACKUP_KEY),
            key_exported: true,
            functions: false,
        },
        PolicyScenario {
            what: "the functions, as the template configures them",
            default_key: Some(BACKUP_KEY),
            key_exported: true,
            functions: true,
        },
    ];
    for scenario in scenarios {
        let what = scenario.what;
        let bucket = crate::common::aws::bucket("toc-policy").await;
        if let Some(key) = scenario.default_key {
            crate::common::aws::set_default_key(&s3, &bucket, key).await;
        }
        let store = format!("s3://{bucket}/college");
        let mut env: PolicyEnv = vec![
            ("AWS_ENDPOINT_URL", proxy.url.clone()),
            // 5 MiB parts: the attachments' data file goes up in parts.
            ("BACKUP_S3_PART_SIZE_MB", "5".into()),
        ];
        if scenario.key_exported {
            env.push(("BACKUP_KMS_KEY_ID", BACKUP_KEY.into()));
        }
        let runs = if scenario.functions {
            run_functions(&env, &store, &url, &server, &uploads_text).await
        } else {
            run_cli_jobs(&env, &store, &url, &server, &uploads_text)
        };
        // What the writes name: the exported key, else (the CLI) the bucket default's key.
        let expected_key = if scenario.key_exported {
            Some(BACKUP_KEY)
        } else {
            scenario.default_key
        };

        let judged: Vec<_> = proxy
            .recorded()
            .into_iter()
            .map(|r| {
                let request = policy_request(&r).unwrap_or_else(|e| panic!("{what}: {e}"));
                (r, request)
            })
            .collect();
        let writes: Vec<_> = judged
            .iter()
            .filter(|(_, p)| p.action == "s3:PutObject")
            .collect();
        let is_part = |r: &crate::common::fault_proxy::Recorded| r.target.contains("partNumber=");
        assert!(
            writes.iter().any(|(r, _)| is_part(r)),
            "{what}: no multipart part was sent"
        );
        assert!(
            writes.iter().any(|(r, _)| r.method == "PUT" && !is_part(r)),
            "{what}: no whole-object PutObject was sent"
        );
        for (r, _) in &writes {
            let sent = (
                r.header("x-amz-server-side-encryption"),
                r.header("x-amz-server-side-encryption-aws-kms-key-id"),
            );
            // Parts and completions (uploadId=) carry no encryption headers; the upload's start
            // and whole-object writes name the key, or nothing.
            let expected = match expected_key {
                Some(key) if !r.target.contains("uploadId=") => (Some("aws:kms"), Some(key)),
                _ => (None, None),
            };
            assert_eq!(sent, expected, "{what}: {} {}", r.method, r.target);
        }
        // The bucket's default is read once per store, only when no encryption is configured.
        let asked = judged
            .iter()
            .filter(|(_, p)| p.action == "s3:GetEncryptionConfiguration")
            .count();
        if !scenario.key_exported {
            assert!(
                (1..=runs).contains(&asked),
                "{what}: GetBucketEncryption sent {asked} times in {runs} runs"
            );
        } else {
            assert_eq!(
                asked, 0,
                "{what}: GetBucketEncryption with a key configured"
            );
        }

        let policy = template_bucket_policy(&bucket);
        let refused: Vec<String> = judged
            .iter()
            .filter_map(|(r, p)| {
                let sids = denials(&policy, p);
                (!sids.is_empty()).then(|| {
                    format!(
                        "{} {} ({}) refused by {sids:?}",
                        r.method, r.target, p.action
                    )
                })
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{what}: the bucket policy would refuse {} of {} requests:\n{}",
            refused.len(),
            judged.len(),
            refused.join("\n")
        );
        let old = old_bucket_policy(&bucket);
        let refused_before = judged
            .iter()
            .filter(|(_, p)| !denials(&old, p).is_empty())
            .count();
        let mut actions: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, p) in &judged {
            *actions.entry(p.action.as_str()).or_default() += 1;
        }
        eprintln!(
            "{what}: {} requests, none refused ({actions:?}); the old policy refused {refused_before}",
            judged.len()
        );
        assert!(
            refused_before > 0,
            "{what}: the old policy refused none of these requests either"
        );
    }
    crate::common::drop_database(&source).await;
}

/// Issue 29: the modules keep the layers docs/architecture.md draws (no circle, no import
/// within a layer, at most 3 upward arrows each named where it starts, no file over 600 lines
/// outside its tests). The script reads the same `crate::…` paths a reader would.
#[test]
fn the_import_graph_keeps_its_layers() {
    let out = std::process::Command::new(root().join("scripts/import-graph"))
        .arg("--check")
        .output()
        .expect("run scripts/import-graph");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
