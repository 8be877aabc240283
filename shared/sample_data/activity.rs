//! The sample college's activity: the email templates and the emails sent to students, the
//! application's log, and the files students uploaded, drawn after the academic records.

use mysql_async::{Conn, Value};
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::values::{datetime, text, FIRST_NAMES};
use super::Inserter;
use crate::error::Result;
use crate::mysql::values::ColumnKind;

/// Writes the activity tables for `students` students, `users` staff accounts and `modules`
/// modules, drawing from `rng`; returns the rows written.
pub(super) async fn activity(
    conn: &mut Conn,
    rng: &mut ChaCha8Rng,
    students: u64,
    users: u64,
    modules: u64,
) -> Result<u64> {
    use ColumnKind::*;
    let mut total = 0u64;

    let mut ins = Inserter::new(
        conn,
        "email_templates",
        &[
            ("id", Integer),
            ("name", Text),
            ("subject", Text),
            ("body", Text),
            ("updated_at", DateTime),
        ],
    );
    for (id, name) in [
        "welcome",
        "grade_released",
        "extension_approved",
        "deferral_approved",
        "transcript_ready",
    ]
    .iter()
    .enumerate()
    {
        ins.row(vec![Value::UInt(id as u64 + 1), text(*name), text(format!("TOC: {name} 📬")), text(format!("Dia duit {{{{first_name}}}},\n\nThis is the {name} notice.\n\nLe meas,\nThe Open College")), datetime(rng, 2024, true)]).await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "email_logs",
        &[
            ("student_id", Integer),
            ("template_id", Integer),
            ("to_address", Text),
            ("subject", Text),
            ("body", Text),
            ("status", Text),
            ("sent_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    for _ in 0..(students * 5) {
        let student = rng.random_range(1..=students);
        let status = *["queued", "sent", "sent", "sent", "bounced"]
            .choose(rng)
            .unwrap_or(&"sent");
        let sent = if status == "queued" {
            Value::NULL
        } else {
            // DATETIME(3): whole milliseconds only.
            match datetime(rng, 2025, true) {
                Value::Date(y, mo, d, h, mi, se, us) => {
                    Value::Date(y, mo, d, h, mi, se, us / 1000 * 1000)
                }
                other => other,
            }
        };
        ins.row(vec![Value::UInt(student), Value::UInt(rng.random_range(1..=5)), text(format!("s{student:08}@students.toc.example")), text("Your results are available"), text(format!("Dia duit,\n\nYour results for module {} are now available.\n\nLe meas,\nThe Open College", rng.random_range(1..=modules))), text(status), sent, datetime(rng, 2025, true)]).await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "system_logs",
        &[
            ("level", Text),
            ("message", Text),
            ("context", Text),
            ("created_at", DateTime),
        ],
    );
    for n in 0..(students * 10) {
        let level = *["debug", "info", "info", "warning", "error"]
            .choose(rng)
            .unwrap_or(&"info");
        let context = if rng.random_bool(0.7) {
            text(format!(
                "{{\"request\": {n}, \"user\": {}, \"path\": \"/students/{}\"}}",
                rng.random_range(1..=users),
                rng.random_range(1..=students)
            ))
        } else {
            Value::NULL
        };
        ins.row(vec![
            text(level),
            text(format!(
                "Request {n} handled in {} ms",
                rng.random_range(1..900)
            )),
            context,
            datetime(rng, 2023, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    let mut ins = Inserter::new(
        conn,
        "file_uploads",
        &[
            ("student_id", Integer),
            ("filename", Text),
            ("mime_type", Text),
            ("size_bytes", Integer),
            ("sha256", Binary),
            ("content", Binary),
            ("uploaded_at", DateTime),
            ("updated_at", DateTime),
        ],
    );
    for n in 0..(students / 5) {
        let size = rng.random_range(1024..16384usize);
        let content: Vec<u8> = (0..size).map(|_| rng.random::<u8>()).collect();
        let digest = Sha256::digest(&content).to_vec();
        let name = format!(
            "Aiste {n} — {}.pdf",
            *FIRST_NAMES.choose(rng).unwrap_or(&"Seán")
        );
        ins.row(vec![
            Value::UInt(rng.random_range(1..=students)),
            text(name),
            text("application/pdf"),
            Value::UInt(size as u64),
            Value::Bytes(digest),
            Value::Bytes(content),
            datetime(rng, 2024, false),
            datetime(rng, 2025, true),
        ])
        .await?;
    }
    total += ins.done().await?;

    Ok(total)
}
