//! What the sample rows are made of: the Irish and English names, grade feedback and assessment
//! components drawn from, and the text, date and time values made from the seeded generator.

use mysql_async::Value;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(super) const FIRST_NAMES: &[&str] = &[
    "Seán",
    "Siobhán",
    "Aoife",
    "Niamh",
    "Pádraig",
    "Órla",
    "Eoin",
    "Ciarán",
    "Máire",
    "Caoimhe",
    "Dónal",
    "Bríd",
    "Róisín",
    "Tadhg",
    "Éabha",
    "Clíodhna",
    "Oisín",
    "Saoirse",
    "Cathal",
    "Gráinne",
    "Conor",
    "Emma",
    "Liam",
    "Sophie",
    "Jack",
    "Ava",
];
pub(super) const LAST_NAMES: &[&str] = &[
    "Ó Briain",
    "Ní Mhurchú",
    "Mac Cárthaigh",
    "O'Brien",
    "Ó Súilleabháin",
    "Nic Giolla Phádraig",
    "Ó Dónaill",
    "Breathnach",
    "de Búrca",
    "Ó Conchúir",
    "Kelly",
    "Murphy",
    "Ní Bhraonáin",
    "Walsh",
    "O'Neill",
    "Ó Ceallaigh",
];
pub(super) const FEEDBACK: &[&str] = &[
    "Excellent analysis 🎉",
    "Good structure; referencing needs work 📚",
    "Maith thú! Very clear argument.",
    "Resubmit section 2 — see rubric",
    "",
    "Strong use of sources.\nWatch the word count.",
];
pub(super) const COMPONENTS: &[&str] = &[
    "Essay",
    "Examination",
    "Project",
    "Presentation",
    "Portfolio",
];

pub(super) fn text(s: impl Into<String>) -> Value {
    Value::Bytes(s.into().into_bytes())
}

pub(super) fn datetime(rng: &mut ChaCha8Rng, year_from: u16, micros: bool) -> Value {
    let us = if micros {
        rng.random_range(0..1_000_000)
    } else {
        0
    };
    Value::Date(
        rng.random_range(year_from..=2026),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
        rng.random_range(0..24),
        rng.random_range(0..60),
        rng.random_range(0..60),
        us,
    )
}

pub(super) fn date(rng: &mut ChaCha8Rng, from: u16, to: u16) -> Value {
    Value::Date(
        rng.random_range(from..=to),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
        0,
        0,
        0,
        0,
    )
}
