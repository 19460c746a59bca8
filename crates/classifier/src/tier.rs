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
