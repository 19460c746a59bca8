//! A tiny training set for unit tests: 3 labels x 5 sentences, written for
//! these tests.

use crate::model::TrainingExample;

pub(crate) const TOY_EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "Charged twice",
        "We were charged twice on the March invoice, please refund the duplicate payment.",
        "billing",
    ),
    (
        "Invoice question",
        "The invoice total looks wrong, the charge for storage doubled.",
        "billing",
    ),
    (
        "Receipt",
        "Please send a copy of last month's invoice and the payment receipt.",
        "billing",
    ),
    (
        "Payment failed",
        "Our credit card payment failed, how do we pay the outstanding invoice?",
        "billing",
    ),
    (
        "Extra charges",
        "Can you explain the extra charges on our bill this month?",
        "billing",
    ),
    (
        "Region down",
        "The West Europe region is down and our virtual machines are unreachable.",
        "outage",
    ),
    (
        "Storage errors",
        "Storage in East US is returning errors, is there an outage right now?",
        "outage",
    ),
    (
        "Degraded",
        "Service health shows degraded performance for App Service in our region.",
        "outage",
    ),
    (
        "Sites down",
        "All our sites went down at 9:00, the status page shows an incident and an outage.",
        "outage",
    ),
    (
        "SQL outage?",
        "Is Azure SQL having an outage? Connections time out in North Europe.",
        "outage",
    ),
    (
        "New user",
        "Please add a new user to the portal with reader permissions.",
        "users",
    ),
    (
        "Cannot sign in",
        "Our new engineer cannot sign in to the portal, please grant access.",
        "users",
    ),
    (
        "Remove role",
        "Remove the contributor role from the user who left the company.",
        "users",
    ),
    (
        "Owner permissions",
        "How do we give a colleague owner permissions in the portal?",
        "users",
    ),
    (
        "Access denied",
        "A user gets access denied in the portal after the role change.",
        "users",
    ),
];

pub(crate) fn toy_examples() -> Vec<TrainingExample<'static>> {
    TOY_EXAMPLES
        .iter()
        .map(|&(subject, text, label)| TrainingExample {
            subject,
            text,
            label,
        })
        .collect()
}
