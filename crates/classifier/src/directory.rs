//! The account directory: who is a customer, with which subscriptions, under which contract.
//!
//! Loaded from `accounts.csv` (LABELS.md format) or from the database's account rows.
//! The directory keeps lookup maps from subscription, tenant, contact address and domain
//! to record indices, so tier resolution is a handful of hash lookups.

use std::collections::HashMap;

use supportd_core::{AccountRecord, Relationship};

use crate::entities::is_guid;

/// The columns of accounts.csv, in the order LABELS.md gives them.
const EXPECTED_COLUMNS: [&str; 8] = [
    "customer",
    "domains",
    "contacts",
    "tenant_id",
    "subscription_id",
    "relationship",
    "managed_os",
    "default",
];

/// Why an account directory could not be loaded. Every variant names where.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{source_name}:1: header must be `{expected}`, found `{found}`")]
    Header {
        source_name: String,
        expected: String,
        found: String,
    },
    #[error("{location}: {reason}")]
    Row { location: String, reason: String },
    #[error("{location}: cannot read CSV: {source}")]
    Csv {
        location: String,
        #[source]
        source: csv::Error,
    },
}

/// The account directory with its lookup indices.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Every record, in file (or database) order.
    records: Vec<AccountRecord>,
    /// Subscription GUID (lower-case) -> record index.
    by_subscription: HashMap<String, usize>,
    /// Tenant GUID (lower-case) -> index of that customer's default record.
    by_tenant: HashMap<String, usize>,
    /// Contact address (lower-case) -> index of that customer's default record.
    by_contact: HashMap<String, usize>,
    /// Sender domain (lower-case) -> index of that customer's default record.
    by_domain: HashMap<String, usize>,
}

impl Directory {
    /// Parses accounts.csv. `source_name` is used in errors and in
    /// [`AccountRecord::source`] (`accounts.csv:7`).
    pub fn from_csv(csv_text: &str, source_name: &str) -> Result<Directory, DirectoryError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(csv_text.as_bytes());
        let mut records = Vec::new();
        let mut header_seen = false;
        for row in reader.records() {
            let row = row.map_err(|source| DirectoryError::Csv {
                location: csv_location(source_name, &source),
                source,
            })?;
            let line = row.position().map_or(0, |position| position.line());
            let location = format!("{source_name}:{line}");
            if !header_seen {
                header_seen = true;
                check_header(&row, source_name)?;
                continue;
            }
            if row.iter().all(str::is_empty) {
                continue;
            }
            records.push(parse_row(&row, location)?);
        }
        if !header_seen {
            return Err(DirectoryError::Header {
                source_name: source_name.to_owned(),
                expected: EXPECTED_COLUMNS.join(","),
                found: String::new(),
            });
        }
        check_duplicate_subscriptions(&records)?;
        Ok(Directory::from_records(records))
    }

    /// Builds the directory from records already validated (the database's account rows).
    /// GUIDs, domains and contacts are lower-cased here so lookups never miss on case.
    pub fn from_records(mut records: Vec<AccountRecord>) -> Directory {
        for record in &mut records {
            lowercase_record(record);
        }
        let mut default_of_customer: HashMap<&str, usize> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            let entry = default_of_customer
                .entry(record.customer.as_str())
                .or_insert(index);
            if record.is_default && !records[*entry].is_default {
                *entry = index;
            }
        }
        let mut directory = Directory::default();
        for (index, record) in records.iter().enumerate() {
            let default_index = default_of_customer[record.customer.as_str()];
            if let Some(subscription_id) = &record.subscription_id {
                directory
                    .by_subscription
                    .entry(subscription_id.clone())
                    .or_insert(index);
            }
            if let Some(tenant_id) = &record.tenant_id {
                directory
                    .by_tenant
                    .entry(tenant_id.clone())
                    .or_insert(default_index);
            }
            for contact in &record.contacts {
                directory
                    .by_contact
                    .entry(contact.clone())
                    .or_insert(default_index);
            }
            for domain in &record.domains {
                directory
                    .by_domain
                    .entry(domain.clone())
                    .or_insert(default_index);
            }
        }
        directory.records = records;
        directory
    }

    /// Every record, in file order.
    pub fn records(&self) -> &[AccountRecord] {
        &self.records
    }

    /// The record of a known subscription GUID (lower-case).
    pub fn record_for_subscription(&self, subscription_id: &str) -> Option<&AccountRecord> {
        self.by_subscription
            .get(subscription_id)
            .map(|&index| &self.records[index])
    }

    /// The default record of the customer owning a known tenant GUID (lower-case).
    pub fn default_record_for_tenant(&self, tenant_id: &str) -> Option<&AccountRecord> {
        self.by_tenant
            .get(tenant_id)
            .map(|&index| &self.records[index])
    }

    /// The default record of the customer listing this contact address (lower-case).
    pub fn default_record_for_contact(&self, email: &str) -> Option<&AccountRecord> {
        self.by_contact
            .get(email)
            .map(|&index| &self.records[index])
    }

    /// The default record of the customer owning this sender domain (lower-case).
    pub fn default_record_for_domain(&self, domain: &str) -> Option<&AccountRecord> {
        self.by_domain
            .get(domain)
            .map(|&index| &self.records[index])
    }
}

fn csv_location(source_name: &str, error: &csv::Error) -> String {
    match error.position() {
        Some(position) => format!("{source_name}:{}", position.line()),
        None => source_name.to_owned(),
    }
}

fn check_header(row: &csv::StringRecord, source_name: &str) -> Result<(), DirectoryError> {
    let found: Vec<String> = row
        .iter()
        .map(|column| column.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if found.iter().map(String::as_str).eq(EXPECTED_COLUMNS) {
        return Ok(());
    }
    Err(DirectoryError::Header {
        source_name: source_name.to_owned(),
        expected: EXPECTED_COLUMNS.join(","),
        found: found.join(","),
    })
}

fn parse_row(row: &csv::StringRecord, location: String) -> Result<AccountRecord, DirectoryError> {
    let row_error = |reason: String| DirectoryError::Row {
        location: location.clone(),
        reason,
    };
    if row.len() != EXPECTED_COLUMNS.len() {
        let missing = EXPECTED_COLUMNS
            .get(row.len())
            .map_or(String::new(), |column| format!(" (missing `{column}`)"));
        return Err(row_error(format!(
            "expected {} columns, found {}{missing}",
            EXPECTED_COLUMNS.len(),
            row.len()
        )));
    }
    let field = |index: usize| row.get(index).unwrap_or("");
    let customer = field(0).to_owned();
    if customer.is_empty() {
        return Err(row_error("customer is empty".to_owned()));
    }
    let domains = split_list(field(1));
    for domain in &domains {
        if domain.contains('@') || !domain.contains('.') || domain.contains(char::is_whitespace) {
            return Err(row_error(format!("domain `{domain}` is not a domain name")));
        }
    }
    let contacts = split_list(field(2));
    for contact in &contacts {
        let valid = contact
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid || contact.contains(char::is_whitespace) {
            return Err(row_error(format!(
                "contact `{contact}` is not an email address"
            )));
        }
    }
    let tenant_id = parse_optional_guid(field(3), "tenant_id").map_err(&row_error)?;
    let subscription_id = parse_optional_guid(field(4), "subscription_id").map_err(&row_error)?;
    let relationship = field(5).parse::<Relationship>().map_err(|_| {
        row_error(format!(
            "relationship `{}` is not one of {}",
            field(5),
            Relationship::ALL
                .iter()
                .map(|relationship| relationship.slug())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let managed_os = parse_boolean(field(6), "managed_os").map_err(&row_error)?;
    let is_default = parse_boolean(field(7), "default").map_err(&row_error)?;
    if domains.is_empty() && contacts.is_empty() && subscription_id.is_none() && tenant_id.is_none()
    {
        return Err(row_error(
            "row has no domain, contact, tenant or subscription to match".to_owned(),
        ));
    }
    Ok(AccountRecord {
        customer,
        domains,
        contacts,
        tenant_id,
        subscription_id,
        relationship,
        managed_os,
        is_default,
        source: location,
    })
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(|item| item.trim().to_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

fn parse_optional_guid(value: &str, column: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    if is_guid(value) {
        Ok(Some(value.to_ascii_lowercase()))
    } else {
        Err(format!(
            "{column} `{value}` is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))
    }
}

fn parse_boolean(value: &str, column: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{column} `{value}` is not `true` or `false`")),
    }
}

fn check_duplicate_subscriptions(records: &[AccountRecord]) -> Result<(), DirectoryError> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for record in records {
        if let Some(subscription_id) = &record.subscription_id
            && let Some(first) = seen.insert(subscription_id, &record.source)
        {
            return Err(DirectoryError::Row {
                location: record.source.clone(),
                reason: format!("subscription_id `{subscription_id}` is already on {first}"),
            });
        }
    }
    Ok(())
}

fn lowercase_record(record: &mut AccountRecord) {
    for domain in &mut record.domains {
        *domain = domain.trim().to_lowercase();
    }
    for contact in &mut record.contacts {
        *contact = contact.trim().to_lowercase();
    }
    if let Some(tenant_id) = &mut record.tenant_id {
        *tenant_id = tenant_id.trim().to_ascii_lowercase();
    }
    if let Some(subscription_id) = &mut record.subscription_id {
        *subscription_id = subscription_id.trim().to_ascii_lowercase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "customer,domains,contacts,tenant_id,subscription_id,relationship,managed_os,default\n";

    fn load(rows: &str) -> Result<Directory, DirectoryError> {
        Directory::from_csv(&format!("{HEADER}{rows}"), "accounts.csv")
    }

    #[test]
    fn valid_rows_are_loaded_lower_cased_with_their_line() {
        let directory = load(
            "Contoso,Contoso.com;contoso.co.uk,Boss@Gmail.com,7D1C0000-0000-4000-8000-000000000001,0F6B0000-0000-4000-8000-000000000002,elasticbox_arm,false,true\n\
             Contoso,contoso.com,,,0f6b0000-0000-4000-8000-000000000003,reseller_agreement,TRUE,false\n",
        )
        .unwrap();
        let records = directory.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].domains, ["contoso.com", "contoso.co.uk"]);
        assert_eq!(records[0].contacts, ["boss@gmail.com"]);
        assert_eq!(
            records[0].subscription_id.as_deref(),
            Some("0f6b0000-0000-4000-8000-000000000002")
        );
        assert_eq!(records[0].source, "accounts.csv:2");
        assert_eq!(records[1].source, "accounts.csv:3");
        assert!(records[1].managed_os);
    }

    #[test]
    fn bad_relationship_names_the_line_and_the_choices() {
        let error = load("A,a.com,,,,elasticbox_arm,false,true\nB,b.com,,,,elastic,false,true\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "accounts.csv:3: relationship `elastic` is not one of elasticbox_arm, reseller_agreement, none"
        );
    }

    #[test]
    fn bad_boolean_names_the_line_and_column() {
        let error = load("A,a.com,,,,none,yes,true\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "accounts.csv:2: managed_os `yes` is not `true` or `false`"
        );
        let error = load("A,a.com,,,,none,false,1\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "accounts.csv:2: default `1` is not `true` or `false`"
        );
    }

    #[test]
    fn bad_guid_names_the_line_and_column() {
        let error = load("A,a.com,,,not-a-guid,none,false,true\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("accounts.csv:2: subscription_id `not-a-guid` is not a GUID"),
            "{error}"
        );
        let error = load("A,a.com,,1234,,none,false,true\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("accounts.csv:2: tenant_id `1234`"),
            "{error}"
        );
    }

    #[test]
    fn missing_column_names_the_line_and_the_column() {
        let error = load("A,a.com,,,,none,false,true\nB,b.com,,,,none,false\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "accounts.csv:3: expected 8 columns, found 7 (missing `default`)"
        );
    }

    #[test]
    fn wrong_header_is_rejected() {
        let error = Directory::from_csv("customer,domain\nA,a.com\n", "accounts.csv")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("accounts.csv:1: header must be"),
            "{error}"
        );
        assert!(Directory::from_csv("", "accounts.csv").is_err());
    }

    #[test]
    fn bad_contact_and_duplicate_subscription_are_rejected() {
        let error = load("A,a.com,nobody,,,none,false,true\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "accounts.csv:2: contact `nobody` is not an email address"
        );
        let guid = "0f6b0000-0000-4000-8000-000000000002";
        let error = load(&format!(
            "A,a.com,,,{guid},none,false,true\nB,b.com,,,{guid},none,false,true\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("accounts.csv:3: subscription_id"),
            "{error}"
        );
        assert!(error.ends_with("is already on accounts.csv:2"), "{error}");
    }

    #[test]
    fn quoted_fields_and_blank_lines_are_accepted() {
        let directory = load("\"Orrin, Vale\",orrinvale.com,,,,none,false,true\n\n").unwrap();
        assert_eq!(directory.records()[0].customer, "Orrin, Vale");
    }
}
