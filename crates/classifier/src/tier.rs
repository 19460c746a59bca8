//! Tier resolution, exactly as LABELS.md orders it:
//!
//! 1. a subscription GUID the directory knows, mentioned in the subject, the body
//!    (quoted text included) or forwarded text: that subscription's record;
//! 2. else a known tenant GUID: that customer's default record;
//! 3. else the sender's address (a listed contact), then the sender's domain:
//!    that customer's default record;
//! 4. no match: `unmanaged`; a record with relationship `none`: `unmanaged`;
//!    otherwise `managed_os` when the record has Managed OS, else `platform`.

use supportd_core::{AccountRecord, Tier};

use crate::directory::Directory;
use crate::entities::GuidMention;

/// The tier, the record that decided it and a sentence saying why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TierResolution<'a> {
    pub(crate) tier: Tier,
    pub(crate) record: Option<&'a AccountRecord>,
    pub(crate) reason: String,
}

/// `guids` are every GUID mentioned, in order of appearance (subject first);
/// `sender_email` is lower-case.
pub(crate) fn resolve_tier<'a>(
    directory: &'a Directory,
    guids: &[GuidMention],
    sender_email: &str,
) -> TierResolution<'a> {
    for mention in guids {
        if let Some(record) = directory.record_for_subscription(&mention.guid) {
            return decided(record, format!("subscription {}", mention.guid));
        }
    }
    for mention in guids {
        if let Some(record) = directory.default_record_for_tenant(&mention.guid) {
            return decided(record, format!("tenant {}", mention.guid));
        }
    }
    if !sender_email.is_empty() {
        if let Some(record) = directory.default_record_for_contact(sender_email) {
            return decided(record, format!("contact {sender_email}"));
        }
        let domain = sender_email
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain);
        if let Some(record) = directory.default_record_for_domain(domain) {
            return decided(record, format!("sender domain {domain}"));
        }
    }
    TierResolution {
        tier: Tier::Unmanaged,
        record: None,
        reason: format!(
            "tier unmanaged: no known subscription or tenant mentioned and sender `{sender_email}` is not in the directory"
        ),
    }
}

fn decided(record: &AccountRecord, matched: String) -> TierResolution<'_> {
    let tier = record.tier();
    let relationship = if tier == Tier::Unmanaged {
        " (relationship none)"
    } else {
        ""
    };
    TierResolution {
        tier,
        record: Some(record),
        reason: format!(
            "tier {tier}: {matched} of {} ({}){relationship}",
            record.customer, record.source
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::{GuidKind, GuidMention};

    const ACCOUNTS: &str = "\
customer,domains,contacts,tenant_id,subscription_id,relationship,managed_os,default
Contoso,contoso.example,boss@gmail.example,aaaaaaaa-0000-4000-8000-000000000001,bbbbbbbb-0000-4000-8000-000000000001,elasticbox_arm,false,false
Contoso,contoso.example,,aaaaaaaa-0000-4000-8000-000000000001,bbbbbbbb-0000-4000-8000-000000000002,elasticbox_arm,true,true
Contoso,contoso.example,,,bbbbbbbb-0000-4000-8000-000000000003,none,false,false
Fabrikam,fabrikam.example,,cccccccc-0000-4000-8000-000000000001,,reseller_agreement,false,false
Legacy,legacy.example,,,,none,false,true
";

    fn directory() -> Directory {
        Directory::from_csv(ACCOUNTS, "accounts.csv").unwrap()
    }

    fn mention(guid: &str) -> GuidMention {
        GuidMention {
            guid: guid.into(),
            kind: GuidKind::Subscription,
        }
    }

    #[test]
    fn known_subscription_decides_before_the_sender() {
        let directory = directory();
        let resolution = resolve_tier(
            &directory,
            &[mention("bbbbbbbb-0000-4000-8000-000000000001")],
            "someone@fabrikam.example",
        );
        assert_eq!(resolution.tier, Tier::Platform);
        assert_eq!(
            resolution.reason,
            "tier platform: subscription bbbbbbbb-0000-4000-8000-000000000001 of Contoso (accounts.csv:2)"
        );
        // A `none` subscription of a CSP customer: unmanaged, whatever the sender.
        let resolution = resolve_tier(
            &directory,
            &[mention("bbbbbbbb-0000-4000-8000-000000000003")],
            "it@contoso.example",
        );
        assert_eq!(resolution.tier, Tier::Unmanaged);
        assert_eq!(resolution.record.unwrap().source, "accounts.csv:4");
    }

    #[test]
    fn unknown_guids_are_skipped_and_the_first_known_one_wins() {
        let directory = directory();
        let resolution = resolve_tier(
            &directory,
            &[
                mention("dddddddd-0000-4000-8000-000000000009"),
                mention("bbbbbbbb-0000-4000-8000-000000000002"),
                mention("bbbbbbbb-0000-4000-8000-000000000001"),
            ],
            "",
        );
        assert_eq!(resolution.tier, Tier::ManagedOs);
    }

    #[test]
    fn tenant_selects_the_default_record_after_subscriptions() {
        let directory = directory();
        let resolution = resolve_tier(
            &directory,
            &[mention("aaaaaaaa-0000-4000-8000-000000000001")],
            "x@fabrikam.example",
        );
        assert_eq!(resolution.tier, Tier::ManagedOs);
        assert!(
            resolution.reason.contains("tenant aaaaaaaa"),
            "{}",
            resolution.reason
        );
        let resolution = resolve_tier(
            &directory,
            &[
                mention("aaaaaaaa-0000-4000-8000-000000000001"),
                mention("bbbbbbbb-0000-4000-8000-000000000001"),
            ],
            "",
        );
        assert_eq!(resolution.tier, Tier::Platform, "subscription beats tenant");
    }

    #[test]
    fn contact_then_domain_then_default_record_then_unmanaged() {
        let directory = directory();
        let contact = resolve_tier(&directory, &[], "boss@gmail.example");
        assert_eq!(contact.tier, Tier::ManagedOs);
        assert!(contact.reason.contains("contact boss@gmail.example"));
        let domain = resolve_tier(&directory, &[], "it@contoso.example");
        assert_eq!(
            (domain.tier, domain.record.unwrap().source.as_str()),
            (Tier::ManagedOs, "accounts.csv:3")
        );
        // No row marked default: the customer's first row.
        let first_row = resolve_tier(&directory, &[], "ap@fabrikam.example");
        assert_eq!(first_row.tier, Tier::Platform);
        let none = resolve_tier(&directory, &[], "x@legacy.example");
        assert_eq!(none.tier, Tier::Unmanaged);
        assert!(none.reason.ends_with("(relationship none)"));
        let unknown = resolve_tier(&directory, &[], "x@elsewhere.example");
        assert_eq!((unknown.tier, unknown.record), (Tier::Unmanaged, None));
        let subdomain = resolve_tier(&directory, &[], "x@mail.contoso.example");
        assert_eq!(subdomain.tier, Tier::Unmanaged, "domains match exactly");
    }
}
