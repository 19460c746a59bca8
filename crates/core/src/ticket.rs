//! Tickets, their references, classifications and routing decisions.

use crate::category::{Category, Tier};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The customer-visible reference of a ticket, `CS-<number>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketRef(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a ticket reference (expected CS-<number>, e.g. CS-1042)")]
pub struct ParseTicketRefError(String);

impl TicketRef {
    pub const PREFIX: &'static str = "CS";

    pub fn new(number: u64) -> Self {
        TicketRef(number)
    }

    pub fn number(self) -> u64 {
        self.0
    }

    /// Finds a tag such as `[CS-1042]` in a subject line (case-insensitive).
    pub fn find_in_subject(subject: &str) -> Option<TicketRef> {
        let mut start = 0;
        while let Some(offset) = subject[start..].find('[') {
            let open = start + offset;
            start = open + 1;
            let close = subject[open..].find(']')?;
            let inner = &subject[open + 1..open + close];
            if let Ok(ticket_ref) = inner.trim().parse() {
                return Some(ticket_ref);
            }
        }
        None
    }
}

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", Self::PREFIX, self.0)
    }
}

impl FromStr for TicketRef {
    type Err = ParseTicketRefError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let error = || ParseTicketRefError(value.to_owned());
        let (prefix, digits) = value.split_once('-').ok_or_else(error)?;
        if !prefix.eq_ignore_ascii_case(Self::PREFIX)
            || digits.is_empty()
            || digits.len() > 18
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(error());
        }
        digits.parse().map(TicketRef).map_err(|_| error())
    }
}

impl TryFrom<String> for TicketRef {
    type Error = ParseTicketRefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<TicketRef> for String {
    fn from(ticket_ref: TicketRef) -> String {
        ticket_ref.to_string()
    }
}

/// The name of a queue: lower-case ASCII letters, digits and dashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a queue name (lower-case letters, digits and dashes, 1 to 64 characters)")]
pub struct ParseQueueNameError(String);

impl QueueName {
    /// Where mail that could not be parsed waits for a person.
    pub const QUARANTINE: &'static str = "quarantine";

    pub fn parse(value: &str) -> Result<Self, ParseQueueNameError> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(QueueName(value.to_owned()))
        } else {
            Err(ParseQueueNameError(value.to_owned()))
        }
    }

    pub fn quarantine() -> Self {
        QueueName(Self::QUARANTINE.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for QueueName {
    type Error = ParseQueueNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        QueueName::parse(&value)
    }
}

impl From<QueueName> for String {
    fn from(queue_name: QueueName) -> String {
        queue_name.0
    }
}

macro_rules! slug_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $slug:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $slug)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn slug(self) -> &'static str {
                match self {
                    $($name::$variant => $slug,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.slug())
            }
        }

        impl FromStr for $name {
            type Err = crate::ParseLabelError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|item| item.slug() == value)
                    .ok_or_else(|| crate::ParseLabelError {
                        kind: stringify!($name),
                        value: value.to_owned(),
                        expected: $name::ALL.iter().map(|item| item.slug()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

slug_enum! {
    /// How soon a ticket needs a first response. Ordered from least to most urgent.
    Priority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
}

impl Priority {
    /// One step more urgent (an SLA breach raises the priority); `Urgent` stays.
    pub fn raised(self) -> Priority {
        match self {
            Priority::Low => Priority::Normal,
            Priority::Normal => Priority::High,
            Priority::High | Priority::Urgent => Priority::Urgent,
        }
    }
}

slug_enum! {
    /// Where a ticket is in its life.
    TicketStatus {
        Open => "open",
        PendingCustomer => "pending_customer",
        Resolved => "resolved",
        Closed => "closed",
    }
}

slug_enum! {
    /// How an account came under CenturyLink's authority (accounts.csv `relationship`).
    Relationship {
        ElasticboxArm => "elasticbox_arm",
        ResellerAgreement => "reseller_agreement",
        None => "none",
    }
}

slug_enum! {
    /// A mail the routing decision asks the outbox to send.
    Action {
        /// Acknowledge a new ticket to the customer, with its tag.
        Acknowledge => "acknowledge",
        /// Tell the customer the request is outside their support scope, and why.
        ScopeNotice => "scope_notice",
        /// Hand the ticket to the Microsoft escalation desk.
        MicrosoftEscalation => "microsoft_escalation",
    }
}

/// One row of the account directory (LABELS.md, accounts.csv).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub customer: String,
    /// Sender domains, lower-case.
    pub domains: Vec<String>,
    /// Individual sender addresses, lower-case.
    pub contacts: Vec<String>,
    /// Azure AD tenant GUID, lower-case, when known.
    pub tenant_id: Option<String>,
    /// Azure subscription GUID, lower-case, when known.
    pub subscription_id: Option<String>,
    pub relationship: Relationship,
    pub managed_os: bool,
    /// The customer's default record, used when no subscription is named.
    pub is_default: bool,
    /// Where the record came from (`accounts.csv:12`), so a reason can cite it.
    pub source: String,
}

impl AccountRecord {
    /// The tier this record gives (LABELS.md, tier resolution steps 4 and 5).
    pub fn tier(&self) -> Tier {
        match (self.relationship, self.managed_os) {
            (Relationship::None, _) => Tier::Unmanaged,
            (_, true) => Tier::ManagedOs,
            (_, false) => Tier::Platform,
        }
    }
}

/// Identifiers found in a message's text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entities {
    /// GUIDs that look like Azure subscription IDs (lower-case), in order of appearance.
    pub subscription_ids: Vec<String>,
    /// GUIDs named as tenant / directory IDs (lower-case).
    pub tenant_ids: Vec<String>,
    /// ARM resource IDs (`/subscriptions/…/resourceGroups/…`).
    pub resource_ids: Vec<String>,
    pub invoice_numbers: Vec<String>,
    /// Azure region names, normalised (`westeurope`).
    pub regions: Vec<String>,
    /// Error codes (`AllocationFailed`, `AADSTS50076`, HTTP status codes named as errors).
    pub error_codes: Vec<String>,
    /// Microsoft support case numbers.
    pub microsoft_cases: Vec<String>,
}

/// The four labels of a message, with the evidence for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub tier: Tier,
    pub category: Category,
    pub in_scope: bool,
    pub microsoft: bool,
    /// How sure the category decision is, 0 to 1.
    pub confidence: f32,
    /// Why: the account record used, the rules that fired, the scores that decided.
    pub reasons: Vec<String>,
    pub entities: Entities,
    /// The account record that decided the tier, when one matched.
    pub account: Option<AccountRecord>,
}

/// Where a classified ticket goes and what happens next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub queue: QueueName,
    pub priority: Priority,
    /// Unix seconds by which the first response is due.
    pub first_response_due: i64,
    /// Name of the routing rule that matched.
    pub rule: String,
    pub reasons: Vec<String>,
    pub actions: Vec<Action>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ref_round_trips_and_rejects_junk() {
        let ticket_ref: TicketRef = "CS-1042".parse().unwrap();
        assert_eq!(ticket_ref.number(), 1042);
        assert_eq!(ticket_ref.to_string(), "CS-1042");
        assert_eq!("cs-7".parse::<TicketRef>(), Ok(TicketRef::new(7)));
        for bad in [
            "",
            "CS-",
            "CS1042",
            "XX-1",
            "CS-12a",
            "CS--1",
            "CS-99999999999999999999",
        ] {
            assert!(bad.parse::<TicketRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ticket_tag_is_found_anywhere_in_the_subject() {
        let find = TicketRef::find_in_subject;
        assert_eq!(find("[CS-1042] Re: VM down"), Some(TicketRef::new(1042)));
        assert_eq!(find("RE: [ext] [CS-9] Re: VM"), Some(TicketRef::new(9)));
        assert_eq!(find("Re: VM down [ cs-77 ]"), Some(TicketRef::new(77)));
        assert_eq!(find("Re: VM down [CS-x]"), None);
        assert_eq!(find("Re: VM down [CS-12"), None);
        assert_eq!(find("CS-1042 without brackets"), None);
        assert_eq!(find("ünïcödé [CS-5]"), Some(TicketRef::new(5)));
    }

    #[test]
    fn queue_names_are_validated() {
        assert!(QueueName::parse("microsoft-escalation").is_ok());
        assert!(QueueName::parse("Billing").is_err());
        assert!(QueueName::parse("").is_err());
        assert!(QueueName::parse("a b").is_err());
    }

    #[test]
    fn priority_raises_one_step_and_stops_at_urgent() {
        assert_eq!(Priority::Low.raised(), Priority::Normal);
        assert_eq!(Priority::High.raised(), Priority::Urgent);
        assert_eq!(Priority::Urgent.raised(), Priority::Urgent);
        assert!(Priority::Urgent > Priority::Normal);
    }

    #[test]
    fn account_tier_follows_relationship_then_managed_os() {
        let mut record = AccountRecord {
            customer: "Contoso".into(),
            domains: vec!["contoso.com".into()],
            contacts: vec![],
            tenant_id: None,
            subscription_id: None,
            relationship: Relationship::ElasticboxArm,
            managed_os: false,
            is_default: true,
            source: "accounts.csv:2".into(),
        };
        assert_eq!(record.tier(), Tier::Platform);
        record.managed_os = true;
        assert_eq!(record.tier(), Tier::ManagedOs);
        record.relationship = Relationship::None;
        assert_eq!(record.tier(), Tier::Unmanaged);
    }
}
