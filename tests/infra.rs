//! The SAM templates agree with the code and the README: a function for every Lambda binary
//! and back, schedules that target functions, environment variables the code reads, the
//! lifecycle the README's retention table promises, and one KMS key from the functions' writes
//! to the replica.

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

    let policy = resources(&main, "AWS::S3::BucketPolicy")
        .into_values()
        .find(|p| reference(&p["Properties"]["Bucket"]) == Some(parameter(bucket_name)))
        .expect("the backup bucket's policy");
    let denied_writes: Vec<&Value> =
        one_or_many(&policy["Properties"]["PolicyDocument"]["Statement"])
            .into_iter()
            .filter(|s| {
                s["Effect"].as_str() == Some("Deny") && s["Principal"].as_str() == Some("*")
            })
            .filter(|s| actions(s).contains(&"s3:PutObject"))
            .collect();
    let refused_unless = |key: &str| {
        denied_writes
            .iter()
            .map(|s| &s["Condition"]["StringNotEqualsIfExists"][key])
            .find(|v| !v.is_null())
    };
    assert_eq!(
        refused_unless("s3:x-amz-server-side-encryption").and_then(Value::as_str),
        Some("aws:kms"),
        "the policy must refuse writes that are not SSE-KMS"
    );
    assert_eq!(
        refused_unless("s3:x-amz-server-side-encryption-aws-kms-key-id").and_then(reference),
        Some(key_arn.clone()),
        "the policy must refuse writes under another KMS key (IfExists: the bucket default is {key})"
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
