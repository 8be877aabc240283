//! The rows of the sample database: a college's programmes, modules, students, grades and
//! correspondence, drawn from a seeded generator (the correspondence and logs in `activity`,
//! the names and value makers in `values`).

use mysql_async::{Conn, Value};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::activity::activity;
use super::values::{date, datetime, text, COMPONENTS, FEEDBACK, FIRST_NAMES, LAST_NAMES};
use super::{Inserter, SampleReport};
use crate::error::Result;
use crate::mysql::values::ColumnKind;

pub(super) async fn generate(
    conn: &mut Conn,
    scale: u32,
    seed: u64,
    database: &str,
) -> Result<SampleReport> {
    use ColumnKind::*;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = u64::from(scale);
    let programmes = 12u64;
    let modules = 60u64;
    let students = 1000 * s;
    let users = 50 + 20 * s;
    let mut total = 0u64;

    let mut ins = Inserter::new(
        conn,
        "programmes",
        &[
            ("id", Integer),
            ("code", Text),
            ("title", Text),
            ("nfq_level", Integer),
            ("credits", Integer),
            ("created_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    for id in 1..=programmes {
        let level = rng.random_range(6..=9u8);
        let row = vec![
            Value::UInt(id),
            text(format!("TOC-P{id:03}")),
            text(format!(
                "Higher Certificate in Subject {id} — Level {level}"
            )),
            Value::UInt(level.into()),
            Value::UInt(if level > 7 { 180 } else { 120 }),
            datetime(&mut rng, 2015, false),
            datetime(&mut rng, 2024, true),
        ];
        ins.row(row).await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "modules",
        &[
            ("id", Integer),
            ("programme_id", Integer),
            ("code", Text),
            ("title", Text),
            ("credits", Integer),
            ("updated_at", DateTime),
        ],
    );
    for id in 1..=modules {
        let row = vec![
            Value::UInt(id),
            Value::UInt(1 + (id - 1) % programmes),
            text(format!("TOC-M{id:04}")),
            text(format!("Módúl {id}: Applied Studies")),
            Value::UInt(*[5u64, 10, 15].choose(&mut rng).unwrap_or(&5)),
            datetime(&mut rng, 2024, true),
        ];
        ins.row(row).await?;
    }
    total += ins.done().await?;

    // Components of each module always add up to exactly 100.
    let mut ins = Inserter::new(
        conn,
        "assessment_components",
        &[
            ("id", Integer),
            ("module_id", Integer),
            ("name", Text),
            ("weight", Decimal),
            ("due_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    let mut component_id = 0u64;
    let mut module_components: Vec<Vec<u64>> = vec![Vec::new(); modules as usize + 1];
    for module in 1..=modules {
        let count = rng.random_range(2..=4usize);
        let mut remaining = 100u32;
        for index in 0..count {
            component_id += 1;
            let weight = if index + 1 == count {
                remaining
            } else {
                rng.random_range(10..=(remaining - 10 * (count - index - 1) as u32).min(60))
            };
            remaining -= weight;
            module_components[module as usize].push(component_id);
            let due = if index == 0 {
                Value::NULL
            } else {
                datetime(&mut rng, 2024, false)
            };
            ins.row(vec![
                Value::UInt(component_id),
                Value::UInt(module),
                text(COMPONENTS[index % COMPONENTS.len()]),
                text(format!("{weight}.00")),
                due,
                datetime(&mut rng, 2024, true),
            ])
            .await?;
        }
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "students",
        &[
            ("id", Integer),
            ("student_number", Text),
            ("first_name", Text),
            ("last_name", Text),
            ("email", Text),
            ("date_of_birth", Date),
            ("phone", Text),
            ("address", Text),
            ("status", Text),
            ("created_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    for id in 1..=students {
        let first = *FIRST_NAMES.choose(&mut rng).unwrap_or(&"Seán");
        let last = *LAST_NAMES.choose(&mut rng).unwrap_or(&"Kelly");
        let phone = if rng.random_bool(0.8) {
            text(format!(
                "+353 8{} {:03} {:04}",
                rng.random_range(3..=9),
                rng.random_range(0..1000),
                rng.random_range(0..10000)
            ))
        } else {
            Value::NULL
        };
        let address = if rng.random_bool(0.9) {
            text(format!(
                "{} Bóthar na Trá,\nGaillimh, H91 {:04}",
                rng.random_range(1..300),
                rng.random_range(0..10000)
            ))
        } else {
            Value::NULL
        };
        let status = *[
            "active",
            "active",
            "active",
            "deferred",
            "withdrawn",
            "graduated",
        ]
        .choose(&mut rng)
        .unwrap_or(&"active");
        ins.row(vec![
            Value::UInt(id),
            text(format!("S{id:08}")),
            text(first),
            text(last),
            text(format!("s{id:08}@students.toc.example")),
            date(&mut rng, 1960, 2007),
            phone,
            address,
            text(status),
            datetime(&mut rng, 2018, false),
            datetime(&mut rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "users",
        &[
            ("id", Integer),
            ("name", Text),
            ("email", Text),
            ("role", Text),
            ("password_hash", Text),
            ("last_login_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    for id in 1..=users {
        let role = match id % 10 {
            0 => "admin,registrar",
            1..=3 => "lecturer",
            4 => "registrar",
            _ => "student",
        };
        let hash: String = (0..53)
            .map(|_| {
                *b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    .choose(&mut rng)
                    .unwrap_or(&b'.') as char
            })
            .collect();
        let login = if rng.random_bool(0.9) {
            datetime(&mut rng, 2025, true)
        } else {
            Value::NULL
        };
        ins.row(vec![
            Value::UInt(id),
            text(format!(
                "{} {}",
                FIRST_NAMES[id as usize % FIRST_NAMES.len()],
                LAST_NAMES[id as usize % LAST_NAMES.len()]
            )),
            text(format!("user{id}@toc.example")),
            text(role),
            text(format!("$2y$12${hash}")),
            login,
            datetime(&mut rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    let mut prefs = Inserter::new(
        conn,
        "notification_preferences",
        &[
            ("user_id", Integer),
            ("email_enabled", Integer),
            ("sms_enabled", Integer),
            ("digest", Text),
            ("updated_at", DateTime),
        ],
    );
    for id in 1..=users {
        prefs
            .row(vec![
                Value::UInt(id),
                Value::UInt(u64::from(rng.random_bool(0.9))),
                Value::UInt(u64::from(rng.random_bool(0.3))),
                text(
                    *["none", "daily", "weekly"]
                        .choose(&mut rng)
                        .unwrap_or(&"none"),
                ),
                datetime(&mut rng, 2025, true),
            ])
            .await?;
    }
    total += prefs.done().await?;

    // Each student takes four modules of one programme; every component gets a grade record.
    let mut enrolments = Vec::new();
    let mut grade_plan = Vec::new();
    for student in 1..=students {
        let programme = rng.random_range(1..=programmes);
        let programme_modules: Vec<u64> = (1..=modules)
            .filter(|m| 1 + (m - 1) % programmes == programme)
            .collect();
        for module in programme_modules.iter().take(4) {
            enrolments.push((student, programme, *module));
            for component in &module_components[*module as usize] {
                grade_plan.push((student, *module, *component));
            }
        }
    }
    let mut ins = Inserter::new(
        conn,
        "enrolments",
        &[
            ("student_id", Integer),
            ("programme_id", Integer),
            ("module_id", Integer),
            ("academic_year", Year),
            ("status", Text),
            ("enrolled_on", Date),
            ("updated_at", DateTime),
        ],
    );
    for (student, programme, module) in &enrolments {
        ins.row(vec![
            Value::UInt(*student),
            Value::UInt(*programme),
            Value::UInt(*module),
            Value::UInt(2025),
            text(
                *["enrolled", "completed", "withdrawn"]
                    .choose(&mut rng)
                    .unwrap_or(&"enrolled"),
            ),
            date(&mut rng, 2025, 2025),
            datetime(&mut rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "student_grade_records",
        &[
            ("student_id", Integer),
            ("module_id", Integer),
            ("assessment_component_id", Integer),
            ("grade", Decimal),
            ("percentile", Float),
            ("status", Text),
            ("feedback", Text),
            ("graded_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    let grade_records = grade_plan.len() as u64;
    for (student, module, component) in &grade_plan {
        let graded = rng.random_bool(0.85);
        let grade = if graded {
            text(format!(
                "{}.{:02}",
                rng.random_range(20..100),
                rng.random_range(0..100)
            ))
        } else {
            Value::NULL
        };
        let percentile = if graded {
            Value::Float(rng.random::<f32>() * 100.0)
        } else {
            Value::NULL
        };
        let status = if graded {
            *["graded", "released"].choose(&mut rng).unwrap_or(&"graded")
        } else {
            "pending"
        };
        let feedback = if graded {
            text(*FEEDBACK.choose(&mut rng).unwrap_or(&""))
        } else {
            Value::NULL
        };
        let graded_at = if graded {
            datetime(&mut rng, 2025, true)
        } else {
            Value::NULL
        };
        ins.row(vec![
            Value::UInt(*student),
            Value::UInt(*module),
            Value::UInt(*component),
            grade,
            percentile,
            text(status),
            feedback,
            graded_at,
            datetime(&mut rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "extensions_deferrals",
        &[
            ("student_id", Integer),
            ("assessment_component_id", Integer),
            ("kind", Text),
            ("reason", Text),
            ("new_due_date", Date),
            ("approved_by", Integer),
            ("updated_at", DateTime),
        ],
    );
    for _ in 0..(students / 20) {
        let (student, _, component) = *grade_plan.choose(&mut rng).unwrap_or(&(1, 1, 1));
        let kind = if rng.random_bool(0.7) {
            "extension"
        } else {
            "deferral"
        };
        let approver = if rng.random_bool(0.8) {
            Value::UInt(rng.random_range(1..=users))
        } else {
            Value::NULL
        };
        ins.row(vec![
            Value::UInt(student),
            Value::UInt(component),
            text(kind),
            text("Medical certificate provided — 'bereavement' per policy 4.2"),
            date(&mut rng, 2025, 2026),
            approver,
            datetime(&mut rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "transcripts",
        &[
            ("student_id", Integer),
            ("issued_at", DateTime),
            ("gpa", Decimal),
            ("award", Text),
            ("document", Binary),
            ("updated_at", DateTime),
        ],
    );
    for student in (1..=students).step_by(4) {
        let document: Vec<u8> = (0..rng.random_range(256..2048))
            .map(|_| rng.random::<u8>())
            .collect();
        ins.row(vec![
            Value::UInt(student),
            datetime(&mut rng, 2020, false),
            text(format!(
                "{}.{:02}",
                rng.random_range(1..4),
                rng.random_range(0..100)
            )),
            text("Bachelor of Arts (Honours) — Second Class, Grade 1"),
            Value::Bytes(document),
            datetime(&mut rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    total += activity(conn, &mut rng, students, users, modules).await?;

    Ok(SampleReport {
        database: database.to_string(),
        scale,
        seed,
        students,
        grade_records,
        rows: total,
    })
}
