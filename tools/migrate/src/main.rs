//! One-off data migrations for stacks deployed from older builds
//! (docs/broadcasts.md#migration), with the operator's AWS credentials
//! (the standard variables, or a profile):
//!
//!   cargo run --release -p migrate -- template-segments --table GRANTS_TABLE_NAME [--segments 8]
//!
//! Prints what it did as JSON. Safe to run again, and while the stack serves.

use std::process::ExitCode;

use shared::store::migrate::{self, Backfilled};

const USAGE: &str = "usage: migrate template-segments --table GRANTS_TABLE_NAME [--segments N (1-1000, default 8)]";

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

async fn template_segments(args: &[String]) -> Result<(), String> {
    let table = flag(args, "--table").ok_or(USAGE)?;
    let segments: u32 = match flag(args, "--segments") {
        Some(n) => n.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or(USAGE)?,
        None => 8,
    };
    let db = shared::aws::dynamodb().await;
    let passes = (0..segments).map(|segment| migrate::template_segments(&db, table, segment, segments));
    let mut total = Backfilled::default();
    for pass in futures::future::join_all(passes).await {
        let done = pass.map_err(|e| e.to_string())?;
        total.scanned += done.scanned;
        total.updated += done.updated;
        total.skipped += done.skipped;
        total.malformed += done.malformed;
    }
    let report = serde_json::json!({
        "table": table, "scanned": total.scanned, "updated": total.updated,
        "skipped": total.skipped, "malformed": total.malformed,
    });
    println!("{report}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("template-segments") => template_segments(&args).await,
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
