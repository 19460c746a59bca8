//! What the IMAP benches share: the 4 KB customer mail they seed, and the
//! configuration they run `serve` with.

use std::path::{Path, PathBuf};

use supportd_tests::servers::dovecot::{Dovecot, SUPPORT_USER};
use supportd_tests::workspace_root;

/// The repository's default configuration with the rule files made absolute
/// and one `[[mailbox]]` named `bench` that leaves the mail where it is, plus
/// `mailbox_lines` (its `start`, a batch size…), written to
/// `directory/supportd.toml`.
pub fn serve_config(
    directory: &Path,
    dovecot: &Dovecot,
    password_file: &Path,
    mailbox_lines: &str,
) -> PathBuf {
    let config_dir = workspace_root().join("config");
    let default = std::fs::read_to_string(config_dir.join("default.toml")).expect("default.toml");
    let absolute =
        |name: &str| format!("rules = {:?}", config_dir.join(name).display().to_string());
    let config = default
        .replace("rules = \"classifier.toml\"", &absolute("classifier.toml"))
        .replace("rules = \"routing.toml\"", &absolute("routing.toml"));
    let mailbox = format!(
        "\n[[mailbox]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\n\
         username = \"{SUPPORT_USER}\"\nauth = {{ method = \"password\", password_file = \"{}\" }}\n\
         acknowledge = \"none\"\n{mailbox_lines}",
        dovecot.plain_port(),
        password_file.display()
    );
    let path = directory.join("supportd.toml");
    std::fs::write(&path, format!("{config}{mailbox}")).expect("write config");
    path
}

/// A customer mail of about 4 KB with a unique Message-ID.
pub fn mail(index: usize) -> Vec<u8> {
    let mut body = String::new();
    while body.len() < 3_600 {
        body.push_str(
            "Our deployment of the reporting VMs in West Europe keeps failing with an \
             allocation error since this morning, and the portal shows nothing useful. \
             Could you check what is going on with the subscription?\r\n",
        );
    }
    format!(
        "From: Sam Keller <sam@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Deployment failing ({index})\r\n\
         Date: Wed, 25 Nov 2026 09:14:00 -0600\r\n\
         Message-ID: <bench-{index}@fabrikam-freight.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}
