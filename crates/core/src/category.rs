//! The labels of LABELS.md: support tier and category, and the in-scope rule.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A label value that is not one of the slugs LABELS.md defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of: {expected})")]
pub struct ParseLabelError {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

/// The support level that governs a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Not a CSP account of CenturyLink: nothing is in scope.
    Unmanaged,
    /// Re-sold (CSP) Azure account: platform-level support.
    Platform,
    /// CSP resource with a Managed OS contract.
    ManagedOs,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Unmanaged, Tier::Platform, Tier::ManagedOs];

    pub fn slug(self) -> &'static str {
        match self {
            Tier::Unmanaged => "unmanaged",
            Tier::Platform => "platform",
            Tier::ManagedOs => "managed_os",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for Tier {
    type Err = ParseLabelError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|tier| tier.slug() == value)
            .ok_or_else(|| ParseLabelError {
                kind: "tier",
                value: value.to_owned(),
                expected: Tier::ALL.map(Tier::slug).join(", "),
            })
    }
}

macro_rules! categories {
    ($($variant:ident => $slug:literal),+ $(,)?) => {
        /// What a request is about: exactly one, the primary one (LABELS.md section 2).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Category {
            $(#[serde(rename = $slug)] $variant,)+
        }

        impl Category {
            /// Every category, platform items first, then OS items, then `other`.
            pub const ALL: [Category; 18] = [$(Category::$variant,)+];

            pub fn slug(self) -> &'static str {
                match self {
                    $(Category::$variant => $slug,)+
                }
            }
        }
    };
}

categories! {
    PortalUsers => "portal-users",
    AccountSetup => "account-setup",
    KnowledgeBase => "knowledge-base",
    ServiceAvailability => "service-availability",
    Billing => "billing",
    SubscriptionManagement => "subscription-management",
    TechnicalSupport => "technical-support",
    MicrosoftEscalation => "microsoft-escalation",
    ConfigReview => "config-review",
    ControlPortal => "control-portal",
    MonthToDate => "month-to-date",
    Estimates => "estimates",
    Terms => "terms",
    RemoteAdministration => "remote-administration",
    MonitoringRemediation => "monitoring-remediation",
    ChangeManagement => "change-management",
    Patching => "patching",
    Other => "other",
}

impl Category {
    /// One of the 13 in-scope items of platform-level support.
    pub fn is_platform(self) -> bool {
        !self.is_os() && self != Category::Other
    }

    /// Operating-system work: in scope only under a Managed OS contract.
    pub fn is_os(self) -> bool {
        matches!(
            self,
            Category::RemoteAdministration
                | Category::MonitoringRemediation
                | Category::ChangeManagement
                | Category::Patching
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for Category {
    type Err = ParseLabelError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|category| category.slug() == value)
            .ok_or_else(|| ParseLabelError {
                kind: "category",
                value: value.to_owned(),
                expected: Category::ALL.map(Category::slug).join(", "),
            })
    }
}

/// Whether a request of `category` from a sender of `tier` is covered (LABELS.md section 3).
pub fn in_scope(tier: Tier, category: Category) -> bool {
    match tier {
        Tier::Unmanaged => false,
        Tier::Platform => category.is_platform(),
        Tier::ManagedOs => category.is_platform() || category.is_os(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip_through_from_str_and_serde() {
        for category in Category::ALL {
            assert_eq!(category.slug().parse::<Category>(), Ok(category));
            let json = serde_json::to_string(&category).unwrap();
            assert_eq!(json, format!("\"{}\"", category.slug()));
        }
        for tier in Tier::ALL {
            assert_eq!(tier.slug().parse::<Tier>(), Ok(tier));
        }
        assert_eq!(
            serde_json::to_string(&Tier::ManagedOs).unwrap(),
            "\"managed_os\""
        );
    }

    #[test]
    fn unknown_slug_names_the_value_and_the_choices() {
        let error = "billing ".parse::<Category>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`billing `"), "{message}");
        assert!(message.contains("month-to-date"), "{message}");
    }

    #[test]
    fn thirteen_platform_four_os_one_other() {
        let platform = Category::ALL.iter().filter(|c| c.is_platform()).count();
        let os = Category::ALL.iter().filter(|c| c.is_os()).count();
        assert_eq!((platform, os), (13, 4));
    }

    #[test]
    fn in_scope_follows_labels_md() {
        assert!(!in_scope(Tier::Unmanaged, Category::Billing));
        assert!(in_scope(Tier::Platform, Category::Billing));
        assert!(!in_scope(Tier::Platform, Category::Patching));
        assert!(!in_scope(Tier::Platform, Category::Other));
        assert!(in_scope(Tier::ManagedOs, Category::Patching));
        assert!(in_scope(Tier::ManagedOs, Category::Terms));
        assert!(!in_scope(Tier::ManagedOs, Category::Other));
    }
}
