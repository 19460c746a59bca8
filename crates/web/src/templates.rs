//! The page templates, embedded in the binary (`templates/`, minijinja with
//! HTML auto-escaping for `.html` names).
//!
//! Embedded rather than read from `config/`: the templates are part of the
//! code's security (escaping, where sanitised HTML may go, the CSRF field on
//! every form), so they ship and are tested with the code that feeds them, and
//! an operator cannot run a binary against templates of another version.

use minijinja::Environment;

const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("queues.html", include_str!("../templates/queues.html")),
    ("queue.html", include_str!("../templates/queue.html")),
    ("ticket.html", include_str!("../templates/ticket.html")),
    ("search.html", include_str!("../templates/search.html")),
    (
        "tickets_table.html",
        include_str!("../templates/tickets_table.html"),
    ),
];

/// The stylesheet served at `/static/style.css`.
pub(crate) const STYLESHEET: &str = include_str!("../templates/style.css");

pub(crate) fn environment() -> anyhow::Result<Environment<'static>> {
    let mut environment = Environment::new();
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .map_err(|error| anyhow::anyhow!("template {name}: {error:#}"))?;
    }
    Ok(environment)
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_compile() {
        super::environment().unwrap();
    }
}
