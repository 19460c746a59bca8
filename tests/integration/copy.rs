//! `supportd copy --to URL` through the CLI: a real SQLite file filled by
//! `supportd ingest` (and `outbox send`, `ticket reply`) into a real, empty
//! PostgreSQL database; the printed counts and checksums match, psql finds
//! the same rows, and the copy answers the read commands exactly as the
//! original does.

use supportd_tests::servers::PostgresDatabase;
use supportd_tests::{TestEnv, fixtures};

/// One line of the printed comparison.
#[derive(Debug)]
struct TableLine {
    table: String,
    source_rows: u64,
    target_rows: u64,
    source_checksum: String,
    target_checksum: String,
    matches: String,
}

fn table_lines(output: &str) -> Vec<TableLine> {
    output
        .lines()
        .skip_while(|line| !line.starts_with("table"))
        .skip(1)
        .take_while(|line| !line.starts_with("copied"))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 6, "a table line: {line}");
            TableLine {
                table: fields[0].to_owned(),
                source_rows: fields[1].parse().expect("source rows"),
                target_rows: fields[2].parse().expect("target rows"),
                source_checksum: fields[3].to_owned(),
                target_checksum: fields[4].to_owned(),
                matches: fields[5].to_owned(),
            }
        })
        .collect()
}

#[test]
fn copy_moves_an_ingested_sqlite_file_into_postgresql_and_the_copy_answers_the_same() {
    let env = TestEnv::with_config("");
    env.ok(&[
        "accounts",
        "import",
        fixtures().join("accounts.csv").to_str().unwrap(),
    ]);
    // Routed, threaded, automatic and unparseable mail, with outbox rows.
    env.ok(&["ingest", fixtures().join("mail").to_str().unwrap()]);
    let reply = env.path().join("reply.txt");
    std::fs::write(&reply, "We are looking into the charge.\n").unwrap();
    env.ok(&[
        "ticket",
        "reply",
        "CS-1001",
        "--body-file",
        reply.to_str().unwrap(),
    ]);

    let database = PostgresDatabase::create();
    let output = env.ok(&["copy", "--to", database.url()]);
    let tables = table_lines(&output);
    assert!(tables.len() >= 15, "every table is reported:\n{output}");
    for line in &tables {
        assert_eq!(line.source_rows, line.target_rows, "{line:?}");
        assert_eq!(line.source_checksum, line.target_checksum, "{line:?}");
        assert_eq!(line.matches, "yes", "{line:?}");
        assert_eq!(line.source_checksum.len(), 16, "{line:?}");
    }
    assert!(output.contains("every table matches"), "{output}");
    assert!(
        !output.contains("password"),
        "no credentials printed:\n{output}"
    );
    // The printed counts are what PostgreSQL holds.
    for line in &tables {
        assert_eq!(
            database.count(&format!("SELECT count(*) FROM {}", line.table)),
            line.target_rows,
            "{line:?}"
        );
    }
    let rows = |table: &str| {
        tables
            .iter()
            .find(|line| line.table == table)
            .unwrap_or_else(|| panic!("{table} in:\n{output}"))
            .target_rows
    };
    assert!(rows("tickets") >= 6, "{output}");
    assert!(rows("messages") >= 8, "{output}");
    assert!(rows("raw_messages") >= 8, "{output}");
    assert!(rows("outbox") >= 2, "{output}");
    assert!(rows("audit_events") > rows("tickets"), "{output}");

    // The copy serves the read commands exactly as the original.
    let copied = TestEnv::with_config("").on_database(database.url());
    for command in [
        &["queue", "list"][..],
        &["queue", "show", "billing"],
        &["queue", "show", "quarantine"],
        &["ticket", "show", "CS-1001"],
        &["outbox", "list"],
    ] {
        assert_eq!(
            copied.ok(command),
            env.ok(command),
            "`supportd {}` differs on the copy",
            command.join(" ")
        );
    }
    // New tickets on the copy continue the numbering.
    let next = output
        .lines()
        .find_map(|line| line.split("the next ticket is ").nth(1))
        .expect("the next ticket number is printed")
        .trim()
        .to_owned();
    let new_mail = copied.path().join("new.eml");
    std::fs::write(
        &new_mail,
        "From: Dana Whitfield <dana@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\nSubject: A new question after the move\r\n\
         Message-ID: <after-the-copy@fabrikam-freight.example>\r\n\r\nHello.\r\n",
    )
    .unwrap();
    copied.ok(&["ingest", new_mail.to_str().unwrap()]);
    assert!(
        copied
            .ok(&["ticket", "show", &next])
            .contains("A new question")
    );

    // A target that is not empty is refused, with a clear error.
    let refused = env.fails(&["copy", "--to", database.url()]);
    assert!(refused.contains("not empty"), "{refused}");
}
