//! Identifiers found in a message's text: subscription and tenant GUIDs, ARM resource IDs,
//! invoice numbers, Azure regions, error codes and Microsoft case numbers.
//!
//! GUIDs are found by a hand-written scanner (the hot path: every message is searched for
//! them for tier resolution); the rest by a few regexes and one Aho-Corasick automaton of
//! region names, all compiled once.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use supportd_core::Entities;

/// What the words around a GUID say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuidKind {
    Subscription,
    Tenant,
    /// Request, correlation, object, client IDs and the like: neither of the above.
    Other,
}

/// One GUID in the text, lower-case, with its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuidMention {
    pub(crate) guid: String,
    pub(crate) kind: GuidKind,
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` with hex digits.
pub(crate) fn is_guid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, &byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

/// Every GUID in `text` in order of appearance, classified by the words before it.
pub(crate) fn find_guids(text: &str, mentions: &mut Vec<GuidMention>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(offset) = memchr_dash(&bytes[start..]) {
        // A GUID's first dash is at position 8.
        let dash = start + offset;
        start = dash + 1;
        if dash < 8 || dash + 28 > bytes.len() {
            continue;
        }
        let begin = dash - 8;
        let candidate = &text.as_bytes()[begin..begin + 36];
        let boundary_before = begin == 0 || !bytes[begin - 1].is_ascii_alphanumeric();
        let boundary_after = bytes
            .get(begin + 36)
            .is_none_or(|byte| !byte.is_ascii_alphanumeric());
        if boundary_before
            && boundary_after
            && let Ok(candidate) = std::str::from_utf8(candidate)
            && is_guid(candidate)
        {
            mentions.push(GuidMention {
                guid: candidate.to_ascii_lowercase(),
                kind: guid_kind(text, begin),
            });
            start = begin + 36;
        }
    }
}

fn memchr_dash(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&byte| byte == b'-')
}

/// Looks at up to 48 bytes before the GUID: the nearest label word decides.
fn guid_kind(text: &str, begin: usize) -> GuidKind {
    let mut window_start = begin.saturating_sub(48);
    while !text.is_char_boundary(window_start) {
        window_start -= 1;
    }
    let window = text[window_start..begin].to_ascii_lowercase();
    if window.ends_with("/subscriptions/") {
        return GuidKind::Subscription;
    }
    let last = |words: &[&str]| words.iter().filter_map(|word| window.rfind(word)).max();
    let tenant = last(&["tenant", "directory", "aad", "entra"]);
    let subscription = last(&["subscription", "sub ", "sub:", "sub-id", "subid"]);
    let other = last(&[
        "request",
        "correlation",
        "activity",
        "object",
        "client",
        "app id",
        "application",
        "tracking",
        "trace",
        "session",
        "operation",
        "principal",
        "resource id",
    ]);
    let best = [
        (tenant, GuidKind::Tenant),
        (subscription, GuidKind::Subscription),
        (other, GuidKind::Other),
    ]
    .into_iter()
    .filter_map(|(position, kind)| position.map(|position| (position, kind)))
    .max_by_key(|(position, _)| *position);
    best.map_or(GuidKind::Subscription, |(_, kind)| kind)
}

/// Finds every entity in `text`. Deterministic; duplicates are removed, first
/// appearance kept.
pub fn extract_entities(text: &str) -> Entities {
    let mut entities = Entities::default();
    add_entities(text, &mut entities);
    entities
}

/// Adds the entities of one more piece of text (subject, body, forwarded text).
pub(crate) fn add_entities(text: &str, entities: &mut Entities) {
    let mut guids = Vec::new();
    find_guids(text, &mut guids);
    for mention in guids {
        match mention.kind {
            GuidKind::Subscription => push_unique(&mut entities.subscription_ids, mention.guid),
            GuidKind::Tenant => push_unique(&mut entities.tenant_ids, mention.guid),
            GuidKind::Other => {}
        }
    }
    if text.contains("/subscriptions/") || text.contains("/SUBSCRIPTIONS/") {
        for found in RESOURCE_ID.find_iter(text) {
            let resource_id = found.as_str().trim_end_matches(['.', ',', ')']);
            push_unique(&mut entities.resource_ids, resource_id.to_owned());
        }
    }
    for found in INVOICE.captures_iter(text) {
        if let Some(number) = found.get(1).or_else(|| found.get(2)) {
            push_unique(
                &mut entities.invoice_numbers,
                number.as_str().to_uppercase(),
            );
        }
    }
    for found in REGIONS.find_iter(text) {
        if word_boundaries(text, found.start(), found.end()) {
            let region = REGION_NAMES[found.pattern().as_usize()].0;
            push_unique(&mut entities.regions, region.to_owned());
        }
    }
    for found in ERROR_CODE.captures_iter(text) {
        if let Some(code) = found.get(1).or_else(|| found.get(2)) {
            push_unique(&mut entities.error_codes, code.as_str().to_owned());
        }
    }
    for found in MICROSOFT_CASE.captures_iter(text) {
        if let Some(number) = found.get(1) {
            let number = number.as_str();
            if looks_like_microsoft_case(text, found.get(0).map_or(0, |all| all.start()), number) {
                push_unique(&mut entities.microsoft_cases, number.to_owned());
            }
        }
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

fn word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// A 15 to 18 digit number is a Microsoft case number when the word "case" (or "SR",
/// "ticket", "Microsoft") stands shortly before it, or when it has the shape Microsoft
/// uses (YYMMDD, then `00`, then eight digits).
fn looks_like_microsoft_case(text: &str, start: usize, number: &str) -> bool {
    let mut window_start = start.saturating_sub(40);
    while !text.is_char_boundary(window_start) {
        window_start -= 1;
    }
    let window = text[window_start..start].to_ascii_lowercase();
    let keyword_end = ["case", "sr", "ticket", "microsoft"]
        .iter()
        .filter_map(|word| window.rfind(word).map(|position| position + word.len()))
        .max();
    // The keyword must label this number: nothing but a few non-digits in between.
    if let Some(keyword_end) = keyword_end {
        let between = &window[keyword_end..];
        if between.len() <= 16 && !between.bytes().any(|byte| byte.is_ascii_digit()) {
            return true;
        }
    }
    let digits = number.as_bytes();
    let two = |at: usize| (digits[at] - b'0') * 10 + (digits[at + 1] - b'0');
    digits.len() == 16
        && (1..=12).contains(&two(2))
        && (1..=31).contains(&two(4))
        && &number[6..8] == "00"
}

/// Invariant: constant patterns, compiled once; a failure is a bug caught by every test.
static RESOURCE_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:/[A-Za-z0-9._()\-]+)*")
        .expect("constant resource ID pattern")
});

static INVOICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(INV[-‐ ]?\d[0-9A-Z\-]*\d)\b|\binvoice\s+(?:number|no\.?|num\.?|#|nr\.?)\s*:?\s*#?\s*([0-9][0-9A-Z\-]{3,}|[A-Z]{1,4}-?[0-9][0-9A-Z\-]{3,})\b",
    )
    .expect("constant invoice pattern")
});

static ERROR_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\b(AADSTS\d{5,7}",
        r"|(?:[A-Z][a-z0-9]+){1,6}(?:Error|Failed|Failure|Exceeded|NotFound|NotAllowed|Disallowed|Denied|Unavailable|Busy|Conflict|Timeout|Unauthorized|Forbidden|Invalid)(?:[A-Z][A-Za-z0-9]*)?",
        r"|0x[0-9A-Fa-f]{6,8}",
        r"|ImagePullBackOff|CrashLoopBackOff|AllocationFailed|QuotaExceeded|OverconstrainedAllocationRequest|SkuNotAvailable",
        r")\b",
        r"|(?i:\b(?:error|code|http|status)\s*:?\s*)([45]\d\d|40\d{3})\b",
    ))
    .expect("constant error code pattern")
});

static MICROSOFT_CASE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:#|\b)(\d{15,18})\b").expect("constant case number pattern"));

/// Azure regions: normalised name, then the ways people write it.
const REGION_NAMES: &[(&str, &str)] = &[
    ("eastus", "east us"),
    ("eastus", "eastus"),
    ("eastus2", "east us 2"),
    ("eastus2", "eastus2"),
    ("westus", "west us"),
    ("westus", "westus"),
    ("westus2", "west us 2"),
    ("westus2", "westus2"),
    ("westus3", "west us 3"),
    ("westus3", "westus3"),
    ("centralus", "central us"),
    ("centralus", "centralus"),
    ("northcentralus", "north central us"),
    ("northcentralus", "northcentralus"),
    ("southcentralus", "south central us"),
    ("southcentralus", "southcentralus"),
    ("westcentralus", "west central us"),
    ("westcentralus", "westcentralus"),
    ("canadacentral", "canada central"),
    ("canadacentral", "canadacentral"),
    ("canadaeast", "canada east"),
    ("canadaeast", "canadaeast"),
    ("brazilsouth", "brazil south"),
    ("brazilsouth", "brazilsouth"),
    ("northeurope", "north europe"),
    ("northeurope", "northeurope"),
    ("westeurope", "west europe"),
    ("westeurope", "westeurope"),
    ("uksouth", "uk south"),
    ("uksouth", "uksouth"),
    ("ukwest", "uk west"),
    ("ukwest", "ukwest"),
    ("francecentral", "france central"),
    ("francecentral", "francecentral"),
    ("germanywestcentral", "germany west central"),
    ("germanywestcentral", "germanywestcentral"),
    ("switzerlandnorth", "switzerland north"),
    ("switzerlandnorth", "switzerlandnorth"),
    ("norwayeast", "norway east"),
    ("norwayeast", "norwayeast"),
    ("swedencentral", "sweden central"),
    ("swedencentral", "swedencentral"),
    ("polandcentral", "poland central"),
    ("polandcentral", "polandcentral"),
    ("italynorth", "italy north"),
    ("italynorth", "italynorth"),
    ("spaincentral", "spain central"),
    ("spaincentral", "spaincentral"),
    ("australiaeast", "australia east"),
    ("australiaeast", "australiaeast"),
    ("australiasoutheast", "australia southeast"),
    ("australiasoutheast", "australiasoutheast"),
    ("australiacentral", "australia central"),
    ("australiacentral", "australiacentral"),
    ("eastasia", "east asia"),
    ("eastasia", "eastasia"),
    ("southeastasia", "southeast asia"),
    ("southeastasia", "southeastasia"),
    ("japaneast", "japan east"),
    ("japaneast", "japaneast"),
    ("japanwest", "japan west"),
    ("japanwest", "japanwest"),
    ("koreacentral", "korea central"),
    ("koreacentral", "koreacentral"),
    ("centralindia", "central india"),
    ("centralindia", "centralindia"),
    ("southindia", "south india"),
    ("southindia", "southindia"),
    ("uaenorth", "uae north"),
    ("uaenorth", "uaenorth"),
    ("southafricanorth", "south africa north"),
    ("southafricanorth", "southafricanorth"),
    ("qatarcentral", "qatar central"),
    ("qatarcentral", "qatarcentral"),
    ("israelcentral", "israel central"),
    ("israelcentral", "israelcentral"),
    ("mexicocentral", "mexico central"),
    ("mexicocentral", "mexicocentral"),
];

static REGIONS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(REGION_NAMES.iter().map(|(_, written)| written))
        .expect("constant region names")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_told_apart_by_the_words_before_them() {
        let text = "Tenant ID: C066F7CC-1F66-459A-B031-DA2BD8EBC6E5, subscription \
                    1f04dd64-a7df-4ca5-9f7d-d822f235c224 and request id 7c1e0a9b-44f2-4c3d-9e01-5b6a2d8f91c3. \
                    Also 62ead0ae-6c5f-4134-b090-1f679aed0f39.";
        let entities = extract_entities(text);
        assert_eq!(
            entities.tenant_ids,
            ["c066f7cc-1f66-459a-b031-da2bd8ebc6e5"]
        );
        assert_eq!(
            entities.subscription_ids,
            [
                "1f04dd64-a7df-4ca5-9f7d-d822f235c224",
                "62ead0ae-6c5f-4134-b090-1f679aed0f39"
            ]
        );
    }

    #[test]
    fn guid_inside_longer_hex_run_is_ignored() {
        let entities = extract_entities(
            "x1f04dd64-a7df-4ca5-9f7d-d822f235c224 and 1f04dd64-a7df-4ca5-9f7d-d822f235c2245",
        );
        assert!(entities.subscription_ids.is_empty());
    }

    #[test]
    fn resource_ids_regions_errors_invoices_cases() {
        let text = "The VM /subscriptions/1f04dd64-a7df-4ca5-9f7d-d822f235c224/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm1 \
                    in West Europe failed with AllocationFailed, then QuotaExceeded and AADSTS50076; \
                    invoice INV-2026-10-448213 and invoice number 99120-7. Microsoft case 2610130040006652, \
                    trace number 091000019384421. HTTP 503 from East US 2 and eastus.";
        let entities = extract_entities(text);
        assert_eq!(
            entities.resource_ids,
            [
                "/subscriptions/1f04dd64-a7df-4ca5-9f7d-d822f235c224/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm1"
            ]
        );
        assert_eq!(
            entities.subscription_ids,
            ["1f04dd64-a7df-4ca5-9f7d-d822f235c224"]
        );
        assert_eq!(entities.regions, ["westeurope", "eastus2", "eastus"]);
        assert_eq!(
            entities.error_codes,
            ["AllocationFailed", "QuotaExceeded", "AADSTS50076", "503"]
        );
        assert_eq!(entities.invoice_numbers, ["INV-2026-10-448213", "99120-7"]);
        assert_eq!(entities.microsoft_cases, ["2610130040006652"]);
    }

    #[test]
    fn camel_case_azure_error_codes_are_found() {
        let entities = extract_entities(
            "jobs fail with UserErrorVmNotFound and ExtensionSnapshotFailedNoNetwork; \
             pods in ImagePullBackOff; deployment RequestDisallowedByPolicy; error 40613",
        );
        assert_eq!(
            entities.error_codes,
            [
                "UserErrorVmNotFound",
                "ExtensionSnapshotFailedNoNetwork",
                "ImagePullBackOff",
                "RequestDisallowedByPolicy",
                "40613"
            ]
        );
    }

    #[test]
    fn region_needs_word_boundaries() {
        assert!(extract_entities("northeast usage").regions.is_empty());
        assert_eq!(extract_entities("in UK South.").regions, ["uksouth"]);
    }
}
