//! `supportd copy --to URL`: move the whole database (the configured one, or
//! `--from URL`) into an empty PostgreSQL database, then print the rows and
//! content checksum of every table on both sides. Fails when any differs.

use anyhow::{Context, bail};
use supportd_store::{CopyReport, Store};

/// Copies `from` into `to` (both migrated first) and prints the comparison.
pub async fn copy(from: &str, to: &str) -> anyhow::Result<()> {
    if let Some(path) = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
        && !std::path::Path::new(path).is_file()
    {
        bail!("the source database {path} does not exist");
    }
    let source = Store::open(from).await.with_context(|| {
        format!(
            "cannot open the source database {}",
            supportd_store::redact_url(from)
        )
    })?;
    let target = Store::open(to)
        .await
        .context("cannot open the target database")?;
    source
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the source database {}", source.database()))?;
    target
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the target database {}", target.database()))?;
    let report = source.copy_to(&target).await.with_context(|| {
        format!(
            "cannot copy {} into {}",
            source.database(),
            target.database()
        )
    })?;
    print!("{}", render(&report));
    source.close().await;
    target.close().await;
    if !report.matches() {
        bail!("the copy differs from its source (see the table above)");
    }
    println!(
        "copied {} into {}: every table matches; the next ticket is CS-{}",
        source.database(),
        target.database(),
        report.next_ticket_number
    );
    Ok(())
}

/// One line per table: rows on each side, checksums, and whether they match.
pub fn render(report: &CopyReport) -> String {
    let mut out = format!(
        "{:<20} {:>10} {:>10}  {:<18} {:<18} {}\n",
        "table", "source", "target", "source checksum", "target checksum", "match"
    );
    for table in &report.tables {
        out.push_str(&format!(
            "{:<20} {:>10} {:>10}  {:<18} {:<18} {}\n",
            table.table,
            table.source_rows,
            table.target_rows,
            &table.source_checksum[..16.min(table.source_checksum.len())],
            &table.target_checksum[..16.min(table.target_checksum.len())],
            if table.matches() { "yes" } else { "NO" }
        ));
    }
    out
}
