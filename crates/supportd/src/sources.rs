//! Where raw mail comes from on the command line: `.eml` files, directories of
//! them, Maildir folders, mbox files and standard input.
//!
//! [`expand_inputs`] checks every path before anything is read, so a typo fails
//! at once with the path named; [`read_input`] then yields each raw message of an
//! input, or a [`SourceProblem`] for an entry that could not be read (reported,
//! skipped, and the rest goes on).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use supportd_store::{SourceKind, SourcePosition};

/// One thing to read mail from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A single message in a file.
    MessageFile(PathBuf),
    /// A message file inside a Maildir (`new/` or `cur/`).
    MaildirEntry(PathBuf),
    /// An mbox file: many messages separated by `From ` lines.
    Mbox(PathBuf),
    /// Standard input: one message, or an mbox when it starts with `From `.
    Stdin,
}

impl Input {
    /// How the input is named in output and in error messages.
    pub fn label(&self) -> String {
        match self {
            Input::MessageFile(path) | Input::MaildirEntry(path) | Input::Mbox(path) => {
                path.display().to_string()
            }
            Input::Stdin => "-".to_owned(),
        }
    }
}

/// One raw message and where it came from.
#[derive(Debug)]
pub struct RawMail {
    /// File path, `path#N` for the N-th message of an mbox, `-` for stdin.
    pub label: String,
    pub bytes: Vec<u8>,
    pub source: SourcePosition,
}

/// An entry that could not be read; reported, skipped, and intake goes on.
#[derive(Debug)]
pub struct SourceProblem {
    pub label: String,
    pub error: String,
}

/// Turns command-line paths into inputs. Fails, naming the path, when a path is
/// missing or is neither a file nor a directory; reads no mail.
pub fn expand_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let metadata = fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if metadata.is_dir() {
            if is_maildir(path) {
                inputs.extend(maildir_entries(path)?);
            } else {
                inputs.extend(eml_files(path)?);
            }
        } else if metadata.is_file() {
            if looks_like_mbox(path) {
                inputs.push(Input::Mbox(path.clone()));
            } else {
                inputs.push(Input::MessageFile(path.clone()));
            }
        } else {
            bail!("{}: not a file or a directory", path.display());
        }
    }
    Ok(inputs)
}

/// A Maildir has `cur/` or `new/` beside `tmp/`; we accept either of the first two.
pub fn is_maildir(path: &Path) -> bool {
    path.join("new").is_dir() || path.join("cur").is_dir()
}

fn maildir_entries(maildir: &Path) -> anyhow::Result<Vec<Input>> {
    let mut entries = Vec::new();
    for folder in ["new", "cur"] {
        let folder = maildir.join(folder);
        if !folder.is_dir() {
            continue;
        }
        entries.extend(
            sorted_files(&folder, |_| true)?
                .into_iter()
                .map(Input::MaildirEntry),
        );
    }
    Ok(entries)
}

fn eml_files(directory: &Path) -> anyhow::Result<Vec<Input>> {
    let files = sorted_files(directory, |path| {
        path.extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("eml"))
    })?;
    Ok(files.into_iter().map(Input::MessageFile).collect())
}

/// Regular files of `directory` (not hidden) that `keep`, sorted by name.
fn sorted_files(directory: &Path, keep: impl Fn(&Path) -> bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let listing =
        fs::read_dir(directory).with_context(|| format!("{}: cannot list", directory.display()))?;
    for entry in listing {
        let entry = entry.with_context(|| format!("{}: cannot list", directory.display()))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // Follows symlinks; a broken one is kept so reading it reports the problem.
        let is_dir = path.is_dir();
        if !hidden && !is_dir && keep(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn looks_like_mbox(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("mbox"))
    {
        return true;
    }
    let mut start = [0u8; 5];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut start))
        .is_ok_and(|()| &start == b"From ")
}

/// Reads every message of one input. `on_mail` gets each message or problem in order.
pub fn read_input(input: &Input, mut on_mail: impl FnMut(Result<RawMail, SourceProblem>)) {
    let label = input.label();
    let problem = |error: std::io::Error| SourceProblem {
        label: label.clone(),
        error: error.to_string(),
    };
    match input {
        Input::MessageFile(path) => on_mail(
            fs::read(path)
                .map(|bytes| RawMail {
                    label: label.clone(),
                    bytes,
                    source: SourcePosition::new(SourceKind::File, label.clone()),
                })
                .map_err(problem),
        ),
        Input::MaildirEntry(path) => on_mail(
            fs::read(path)
                .map(|bytes| RawMail {
                    label: label.clone(),
                    bytes,
                    source: SourcePosition::new(SourceKind::Maildir, label.clone()),
                })
                .map_err(problem),
        ),
        Input::Mbox(path) => match fs::read(path) {
            Ok(bytes) => split_mbox(&label, &bytes, SourceKind::Mbox, &mut on_mail),
            Err(error) => on_mail(Err(problem(error))),
        },
        Input::Stdin => {
            let mut bytes = Vec::new();
            match std::io::stdin().lock().read_to_end(&mut bytes) {
                Ok(_) if bytes.starts_with(b"From ") => {
                    split_mbox(&label, &bytes, SourceKind::Stdin, &mut on_mail)
                }
                Ok(_) => on_mail(Ok(RawMail {
                    label: label.clone(),
                    bytes,
                    source: SourcePosition::new(SourceKind::Stdin, ""),
                })),
                Err(error) => on_mail(Err(problem(error))),
            }
        }
    }
}

fn split_mbox(
    label: &str,
    bytes: &[u8],
    kind: SourceKind,
    on_mail: &mut impl FnMut(Result<RawMail, SourceProblem>),
) {
    for (index, message) in supportd_mail::split_mbox(bytes).into_iter().enumerate() {
        let message_label = format!("{label}#{}", index + 1);
        on_mail(Ok(RawMail {
            source: SourcePosition::new(kind, message_label.clone()),
            label: message_label,
            bytes: message.into_owned(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_path_is_named() {
        let error = expand_inputs(&[PathBuf::from("/no/such/mail.eml")]).unwrap_err();
        assert!(
            format!("{error:#}").contains("/no/such/mail.eml"),
            "{error:#}"
        );
    }

    #[test]
    fn directories_maildirs_and_mboxes_are_told_apart() {
        let temp = tempfile::tempdir().unwrap();
        let plain = temp.path().join("plain");
        fs::create_dir(&plain).unwrap();
        fs::write(plain.join("b.eml"), b"Subject: b\r\n\r\nb").unwrap();
        fs::write(plain.join("a.EML"), b"Subject: a\r\n\r\na").unwrap();
        fs::write(plain.join("notes.txt"), b"not mail").unwrap();
        fs::write(plain.join(".hidden.eml"), b"Subject: h\r\n\r\nh").unwrap();

        let maildir = temp.path().join("maildir");
        for folder in ["new", "cur", "tmp"] {
            fs::create_dir_all(maildir.join(folder)).unwrap();
        }
        fs::write(maildir.join("new/1.host"), b"Subject: 1\r\n\r\n1").unwrap();
        fs::write(maildir.join("cur/2.host:2,S"), b"Subject: 2\r\n\r\n2").unwrap();
        fs::write(maildir.join("tmp/3.host"), b"Subject: 3\r\n\r\n3").unwrap();

        let mbox = temp.path().join("archive");
        fs::write(
            &mbox,
            b"From a@b Thu Jan  1 00:00:00 2026\nSubject: x\n\nx\n",
        )
        .unwrap();

        let inputs = expand_inputs(&[plain.clone(), maildir.clone(), mbox.clone()]).unwrap();
        assert_eq!(
            inputs,
            vec![
                Input::MessageFile(plain.join("a.EML")),
                Input::MessageFile(plain.join("b.eml")),
                Input::MaildirEntry(maildir.join("new/1.host")),
                Input::MaildirEntry(maildir.join("cur/2.host:2,S")),
                Input::Mbox(mbox),
            ]
        );
    }

    #[test]
    fn unreadable_entry_is_a_problem_not_a_stop() {
        let temp = tempfile::tempdir().unwrap();
        let missing = Input::MessageFile(temp.path().join("gone.eml"));
        let mut results = Vec::new();
        read_input(&missing, |result| results.push(result));
        assert_eq!(results.len(), 1);
        let problem = results.pop().unwrap().unwrap_err();
        assert!(problem.label.ends_with("gone.eml"));
    }
}
