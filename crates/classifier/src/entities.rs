//! Identifiers found in a message's text: subscription and tenant GUIDs, ARM resource IDs,
//! invoice numbers, Azure regions, error codes and Microsoft case numbers.
//!
//! One walk over the words of the text finds them all (the hot path: every message is
//! searched for GUIDs for tier resolution): each word is told apart by its shape and
//! the word before it. Only ARM resource IDs use a regex, and only when the text holds
//! `/subscriptions/`.

use std::sync::LazyLock;

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
    add_entities(text, &mut entities, &mut Vec::new());
    entities
}

/// Adds the entities of one more piece of text (subject, body, forwarded text), and
/// appends every GUID it mentions to `guids` (for tier resolution).
pub(crate) fn add_entities(text: &str, entities: &mut Entities, guids: &mut Vec<GuidMention>) {
    let bytes = text.as_bytes();
    let mut previous_word: &str = "";
    let mut word_before_previous: &str = "";
    let mut previous_end = 0;
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_alphanumeric() {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = start;
        // Shape of the word, gathered while walking it: most words are plain
        // lower-case words and need no further look.
        let mut digits = 0;
        let mut inner_capitals = 0;
        while end < bytes.len() {
            let byte = bytes[end];
            if byte.is_ascii_lowercase() || byte == b'_' {
            } else if byte.is_ascii_digit() {
                digits += 1;
            } else if byte.is_ascii_uppercase() {
                inner_capitals += usize::from(end > start);
            } else if !(byte == b'-' && bytes.get(end + 1).is_some_and(u8::is_ascii_alphanumeric)) {
                break;
            }
            end += 1;
        }
        index = end;
        let clean_start = start == 0 || !is_word_byte(bytes[start - 1]);
        let clean_end = bytes.get(end).is_none_or(|&next| !is_word_byte(next));
        if !(clean_start && clean_end) {
            continue;
        }
        if bytes[start].is_ascii_alphabetic()
            && end - start >= 2
            && may_start_region(bytes[start], bytes[start + 1])
        {
            find_region_at(bytes, start, &mut entities.regions);
        }
        let word = &text[start..end];
        if digits > 0 || inner_capitals > 0 || end - start == 36 {
            let gap = &text[previous_end..start];
            classify_word(
                text,
                start,
                word,
                (previous_word, word_before_previous, gap),
                entities,
                guids,
            );
        }
        word_before_previous = previous_word;
        previous_word = word;
        previous_end = end;
    }
    if text.contains("/subscriptions/") || text.contains("/SUBSCRIPTIONS/") {
        for found in RESOURCE_ID.find_iter(text) {
            let resource_id = found.as_str().trim_end_matches(['.', ',', ')']);
            push_unique(&mut entities.resource_ids, resource_id.to_owned());
        }
    }
}

/// Bytes that continue a word: ASCII letters and digits, and any non-ASCII byte
/// (a word that runs into `é` is not a clean identifier).
fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// The suffixes that make a CamelCase word an Azure error code.
const ERROR_CODE_SUFFIXES: [&str; 15] = [
    "Error",
    "Failed",
    "Failure",
    "Exceeded",
    "NotFound",
    "NotAllowed",
    "Disallowed",
    "Denied",
    "Unavailable",
    "Busy",
    "Conflict",
    "Timeout",
    "Unauthorized",
    "Forbidden",
    "Invalid",
];

/// Error codes that do not end like the others.
const KNOWN_ERROR_CODES: [&str; 4] = [
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "OverconstrainedAllocationRequest",
    "SkuNotAvailable",
];

/// Decides what one word is, from its shape and (previous word, the one before, the
/// text between the previous word and this one).
fn classify_word(
    text: &str,
    start: usize,
    word: &str,
    (previous, before_previous, gap): (&str, &str, &str),
    entities: &mut Entities,
    guids: &mut Vec<GuidMention>,
) {
    let bytes = word.as_bytes();
    let is = |candidate: &str, expected: &str| candidate.eq_ignore_ascii_case(expected);
    if bytes.len() == 36 && is_guid(word) {
        let mention = GuidMention {
            guid: word.to_ascii_lowercase(),
            kind: guid_kind(text, start),
        };
        match mention.kind {
            GuidKind::Subscription => {
                push_unique(&mut entities.subscription_ids, mention.guid.clone())
            }
            GuidKind::Tenant => push_unique(&mut entities.tenant_ids, mention.guid.clone()),
            GuidKind::Other => {}
        }
        guids.push(mention);
        return;
    }
    let invoice_context = (is(previous, "invoice") && gap.contains(['#', ':']))
        || (["number", "no", "num", "nr"]
            .iter()
            .any(|label| is(previous, label))
            && is(before_previous, "invoice"));
    if invoice_context && word.len() >= 4 && bytes.iter().any(u8::is_ascii_digit) {
        push_unique(&mut entities.invoice_numbers, word.to_ascii_uppercase());
        return;
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        let status_context = ["error", "code", "http", "status"]
            .iter()
            .any(|label| is(previous, label));
        let status_code = (word.len() == 3 && matches!(bytes[0], b'4' | b'5'))
            || (word.len() == 5 && word.starts_with("40"));
        if status_context && status_code {
            push_unique(&mut entities.error_codes, word.to_owned());
        } else if (15..=18).contains(&word.len()) && looks_like_microsoft_case(text, start, word) {
            push_unique(&mut entities.microsoft_cases, word.to_owned());
        }
        return;
    }
    if word.len() > 4 && word[..3].eq_ignore_ascii_case("inv") {
        let number = word[3..].strip_prefix('-').unwrap_or(&word[3..]);
        if number.starts_with(|c: char| c.is_ascii_digit())
            && number.ends_with(|c: char| c.is_ascii_digit())
        {
            push_unique(&mut entities.invoice_numbers, word.to_ascii_uppercase());
            return;
        }
    }
    if let Some(digits) = word.strip_prefix("AADSTS")
        && (5..=7).contains(&digits.len())
        && digits.bytes().all(|byte| byte.is_ascii_digit())
    {
        push_unique(&mut entities.error_codes, word.to_owned());
        return;
    }
    if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X"))
        && (6..=8).contains(&hex.len())
        && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
    {
        push_unique(&mut entities.error_codes, word.to_owned());
        return;
    }
    if is_camel_case_error_code(word) {
        push_unique(&mut entities.error_codes, word.to_owned());
    }
}

/// `AllocationFailed`, `UserErrorVmNotFound`, `RequestDisallowedByPolicy`: CamelCase
/// humps, then one of [`ERROR_CODE_SUFFIXES`], then optionally more CamelCase.
fn is_camel_case_error_code(word: &str) -> bool {
    let bytes = word.as_bytes();
    if bytes.len() < 6
        || !bytes[0].is_ascii_uppercase()
        || !bytes.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    // Most capitalised words ("Hello", "Azure") have one hump: no code.
    if !bytes[1..].iter().any(u8::is_ascii_uppercase) {
        return false;
    }
    if KNOWN_ERROR_CODES.contains(&word) {
        return true;
    }
    ERROR_CODE_SUFFIXES.iter().any(|suffix| {
        word.match_indices(suffix).any(|(position, _)| {
            let after = &word[position + suffix.len()..];
            position >= 2
                && is_camel_humps(&word[..position])
                && after
                    .bytes()
                    .next()
                    .is_none_or(|byte| byte.is_ascii_uppercase())
        })
    })
}

/// One to six humps of an uppercase letter followed by lowercase letters or digits.
fn is_camel_humps(prefix: &str) -> bool {
    let bytes = prefix.as_bytes();
    let mut humps = 0;
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_uppercase() {
            return false;
        }
        let hump_start = index;
        index += 1;
        while index < bytes.len()
            && (bytes[index].is_ascii_lowercase() || bytes[index].is_ascii_digit())
        {
            index += 1;
        }
        if index - hump_start < 2 {
            return false;
        }
        humps += 1;
    }
    (1..=6).contains(&humps)
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
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
/// Word boundaries are ASCII (`(?-u:\b)`) and no capture groups are used, so every
/// search runs on the fast DFA engines.
static RESOURCE_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:/[A-Za-z0-9._()\-]+)*")
        .expect("constant resource ID pattern")
});

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

/// Indices into [`REGION_NAMES`] by the first letter of the written form, longest
/// first, so `east us 2` is tried before `east us`.
static REGIONS_BY_LETTER: LazyLock<[Vec<usize>; 26]> = LazyLock::new(|| {
    let mut by_letter: [Vec<usize>; 26] = Default::default();
    for (index, (_, written)) in REGION_NAMES.iter().enumerate() {
        let letter = usize::from(written.as_bytes()[0] - b'a');
        by_letter[letter].push(index);
    }
    for indices in &mut by_letter {
        indices.sort_by_key(|&index| std::cmp::Reverse(REGION_NAMES[index].1.len()));
    }
    by_letter
});

/// Whether a word starting with these two letters may be a region name: a bit per
/// (first, second) letter pair of the written forms.
fn may_start_region(first: u8, second: u8) -> bool {
    let (first, second) = (first.to_ascii_lowercase(), second.to_ascii_lowercase());
    second.is_ascii_lowercase()
        && REGION_LETTER_PAIRS[usize::from(first - b'a')] & (1 << (second - b'a')) != 0
}

static REGION_LETTER_PAIRS: LazyLock<[u32; 26]> = LazyLock::new(|| {
    let mut pairs = [0u32; 26];
    for (_, written) in REGION_NAMES {
        let bytes = written.as_bytes();
        pairs[usize::from(bytes[0] - b'a')] |= 1 << (bytes[1] - b'a');
    }
    pairs
});

/// The region whose written form starts at `start` (a word start), if any: a handful
/// of byte comparisons, longest name first.
fn find_region_at(bytes: &[u8], start: usize, regions: &mut Vec<String>) {
    let letter = usize::from(bytes[start].to_ascii_lowercase() - b'a');
    for &candidate in &REGIONS_BY_LETTER[letter] {
        let (normalised, written) = REGION_NAMES[candidate];
        let end = start + written.len();
        // Cheap first: the second letter (every written form has at least two).
        if bytes.get(start + 1).map(u8::to_ascii_lowercase) != Some(written.as_bytes()[1]) {
            continue;
        }
        if end <= bytes.len()
            && bytes[start..end].eq_ignore_ascii_case(written.as_bytes())
            && bytes.get(end).is_none_or(|&next| !is_word_byte(next))
        {
            push_unique(regions, normalised.to_owned());
            return;
        }
    }
}

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
