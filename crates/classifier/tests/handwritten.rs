//! Hand-written mails, three per category, in words unlike the dev corpus: the rules
//! must follow the category definitions, not the corpus's sentences.

#[path = "corpus/mod.rs"]
mod corpus;

use supportd_classifier::{Classifier, Directory};
use supportd_core::{Address, Category, InboundMessage, MessageFlags, Tier};

const ACCOUNTS: &str = "\
customer,domains,contacts,tenant_id,subscription_id,relationship,managed_os,default
Acme Widgets,acme.example,,11111111-1111-4111-8111-111111111111,22222222-2222-4222-8222-222222222222,elasticbox_arm,false,true
Acme Widgets,acme.example,,11111111-1111-4111-8111-111111111111,33333333-3333-4333-8333-333333333333,elasticbox_arm,true,false
Birch Clinics,birch.example,,,44444444-4444-4444-8444-444444444444,reseller_agreement,true,true
";

fn classifier() -> Classifier {
    let directory = Directory::from_csv(ACCOUNTS, "accounts.csv").expect("test directory");
    Classifier::new(directory, corpus::load_rules())
}

fn mail(from: &str, subject: &str, new_text: &str) -> InboundMessage {
    InboundMessage {
        message_id: "test@example".into(),
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: Some(Address {
            name: None,
            email: from.into(),
        }),
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        subject: subject.into(),
        date: None,
        body_text: new_text.into(),
        body_html: None,
        new_text: new_text.into(),
        forwarded_text: String::new(),
        attachments: vec![],
        flags: MessageFlags::default(),
        size: new_text.len() as u64,
        content_hash: String::new(),
        warnings: vec![],
    }
}

/// (category, subject, new text); sent from the platform customer.
const MAILS: &[(Category, &str, &str)] = &[
    // portal-users
    (
        Category::PortalUsers,
        "Access for our auditor",
        "Our external auditor, jane@auditfirm.example, needs to look at the resources in our subscription for two weeks. Could you invite her as a guest with read-only rights? She must not be able to change anything.",
    ),
    (
        Category::PortalUsers,
        "Leaver - please lock out",
        "Tom from finance left on Friday. Please take away his rights in portal.azure.com today; he was an Owner on the subscription.",
    ),
    (
        Category::PortalUsers,
        "colleague gets 'no access' in Azure",
        "My colleague can sign in at portal.azure.com but every blade says she has no permission to view it. She should have Contributor on the web resource group. Can you sort out her role?",
    ),
    // account-setup
    (
        Category::AccountSetup,
        "Second Azure account for our lab",
        "We would like a separate Azure customer account for our research lab, created through ElasticBox like our main one. What do we have to fill in to get that started?",
    ),
    (
        Category::AccountSetup,
        "Stuck registering Azure in ElasticBox",
        "When I add Azure as a provider in ElasticBox, the wizard rejects our tenant and says the reseller relationship is not active. Is there something you must enable before the onboarding can complete?",
    ),
    (
        Category::AccountSetup,
        "Becoming a customer",
        "We run our shop on another cloud today and want to open an Azure account through CenturyLink so we can deploy with ElasticBox. How does sign-up work and how long does it take?",
    ),
    // knowledge-base
    (
        Category::KnowledgeBase,
        "Difference between LRS and GRS?",
        "Quick question: what is the practical difference between locally redundant and geo-redundant storage? Is there documentation you can point me to so I can read up on it?",
    ),
    (
        Category::KnowledgeBase,
        "How do I resize a disk myself",
        "Is there a guide for growing a managed disk from the portal? I would rather learn how to do it than open a ticket every time.",
    ),
    (
        Category::KnowledgeBase,
        "FAQ about reserved instances",
        "Do you have an FAQ that explains how reservations apply to our VMs? Our finance people keep asking and I want something to forward to them.",
    ),
    // service-availability
    (
        Category::ServiceAvailability,
        "Everything in North Europe unreachable",
        "Since about 10:15 all of our apps hosted in North Europe are unreachable and the Azure status page shows an active incident for the region. Our customers cannot log in. Please confirm and keep us updated.",
    ),
    (
        Category::ServiceAvailability,
        "Service Health: Cosmos DB degraded",
        "Service Health currently lists a Cosmos DB degradation in East US 2 and our API is throwing timeouts right now. Nothing changed on our side. What is the ETA?",
    ),
    (
        Category::ServiceAvailability,
        "Maintenance next weekend?",
        "We have a product launch on Saturday. Is Microsoft planning any maintenance on App Service in West Europe that weekend? Nothing is wrong at the moment, we just want to plan.",
    ),
    // billing
    (
        Category::Billing,
        "We paid twice for October",
        "Our accounts team paid the October invoice twice by mistake, once by card and once by bank transfer. Could you refund one of the payments or hold it as credit?",
    ),
    (
        Category::Billing,
        "Wrong company name on invoice",
        "The invoices still show our old company name and address. Please update the billing details and send corrected copies of the last two invoices.",
    ),
    (
        Category::Billing,
        "Unexpected charge for Defender",
        "There is a line on this month's invoice for Defender for Servers that we never turned on. Can you check why we were billed for it and credit us if it's a mistake?",
    ),
    // subscription-management
    (
        Category::SubscriptionManagement,
        "Need more cores in West US 2",
        "Our deployment fails because we hit the regional vCPU quota in West US 2. Please get the limit raised to 64 cores for the Dsv5 family.",
    ),
    (
        Category::SubscriptionManagement,
        "Close the old test subscription",
        "We no longer use the test subscription. Please cancel it at the end of the month so nothing else is billed to it.",
    ),
    (
        Category::SubscriptionManagement,
        "Move subscription to the new tenant",
        "After our merger we need to transfer our subscription to the parent company's tenant. What is involved and can you do it for us?",
    ),
    // technical-support
    (
        Category::TechnicalSupport,
        "VM stuck in 'Updating'",
        "Our database VM has shown 'Updating' in the portal for three hours and will not stop or restart; every action fails with an internal error. Can someone look at it?",
    ),
    (
        Category::TechnicalSupport,
        "App Gateway returning 502 after cert renewal",
        "Since we renewed the certificate on the application gateway yesterday, every request returns 502. The backend pool looks healthy. Please help us find what is wrong.",
    ),
    (
        Category::TechnicalSupport,
        "Function app won't deploy",
        "Our pipeline fails to deploy the function app with a conflict error on the deployment slot. It worked last week and nothing changed in the template.",
    ),
    // microsoft-escalation
    (
        Category::MicrosoftEscalation,
        "Please get Microsoft involved",
        "We have gone back and forth on the replication failure for a week and your team agrees it looks like a platform bug. Please raise it with Microsoft and send us the case number.",
    ),
    (
        Category::MicrosoftEscalation,
        "Update on the Microsoft ticket?",
        "Any news from Microsoft on the case you opened for our disk performance problem? Nobody from their support team has contacted us for five days.",
    ),
    (
        Category::MicrosoftEscalation,
        "Logs for Microsoft support",
        "Microsoft support asked for the network capture on our open case. I have attached it; please pass it on to their engineer.",
    ),
    // config-review
    (
        Category::ConfigReview,
        "Could you look over our network setup?",
        "Before we go live, we would like an expert to look over our virtual network, NSG rules and backup policy and tell us what does not follow best practice. We don't want anything changed, just recommendations.",
    ),
    (
        Category::ConfigReview,
        "Security review of our subscription",
        "Our insurer asks for proof that our Azure configuration was reviewed. Can you assess our setup (public endpoints, encryption, logging) and send a short written report?",
    ),
    (
        Category::ConfigReview,
        "Second opinion on our architecture",
        "We designed the hub-and-spoke layout ourselves. Would your team review the design and point out anything risky?",
    ),
    // control-portal
    (
        Category::ControlPortal,
        "Can't open reports in the Control Portal",
        "The reports page in the CenturyLink Control Portal just spins forever since Monday. Other pages load. Can you check?",
    ),
    (
        Category::ControlPortal,
        "Control Portal login for our CFO",
        "Please create a Control Portal login for our CFO so she can see the Azure spend there. She does not need the Azure portal.",
    ),
    (
        Category::ControlPortal,
        "MSP portal shows the wrong account name",
        "In the MSP portal our Azure account is listed under our old company name. Can that be corrected?",
    ),
    // month-to-date
    (
        Category::MonthToDate,
        "Spend so far in March",
        "How much have we spent on Azure so far this month? Our controller needs the running total for the board pack.",
    ),
    (
        Category::MonthToDate,
        "Current month usage figure",
        "Can you tell me our usage to date for the current month, before the invoice is produced? A total is enough.",
    ),
    (
        Category::MonthToDate,
        "MTD by subscription",
        "Please send the month-to-date cost split by subscription; we accrue it at the end of each week.",
    ),
    // estimates
    (
        Category::Estimates,
        "Price for a small SQL setup",
        "We are planning to move our SQL Server to Azure next quarter. What would a General Purpose 4 vCore database with 200 GB cost per month, roughly?",
    ),
    (
        Category::Estimates,
        "Quote for a DR copy",
        "Could you give us a rough estimate of the monthly cost of keeping a disaster-recovery copy of our five VMs in another region?",
    ),
    (
        Category::Estimates,
        "Ballpark for AKS",
        "If we ran our containers on a three-node AKS cluster instead of VMs, what ballpark monthly figure should we put in the budget?",
    ),
    // terms
    (
        Category::Terms,
        "Which contract governs our Azure?",
        "Our lawyers want to know which agreement covers the Azure services we buy from you and whether there is a liability cap. Can you send the signed copy?",
    ),
    (
        Category::Terms,
        "Notice period for ending the service",
        "What notice do we have to give under our agreement if we decide not to renew next year?",
    ),
    (
        Category::Terms,
        "GDPR paperwork",
        "Please send the data processing agreement for our Azure services and tell us which sub-processors are involved.",
    ),
    // remote-administration
    (
        Category::RemoteAdministration,
        "Add the new accountant to the server",
        "Can one of your admins log on to FIN-APP02 and add the user kpatel to the local Remote Desktop Users group? She starts tomorrow.",
    ),
    (
        Category::RemoteAdministration,
        "Install Java on the app server",
        "Please install the Java 17 runtime on APP03 and set JAVA_HOME for the system; the vendor's upgrade needs it.",
    ),
    (
        Category::RemoteAdministration,
        "Set up a nightly task",
        "Could you create a scheduled task on the file server that runs our cleanup script every night at 2am under the service account?",
    ),
    // monitoring-remediation
    (
        Category::MonitoringRemediation,
        "Memory alerts on the web servers",
        "We keep getting high memory alerts from WEB01 and WEB02 around lunchtime. Could you find out what is using the memory and fix it?",
    ),
    (
        Category::MonitoringRemediation,
        "Watch the print service",
        "Can you monitor the print spooler service on PRN01 and restart it automatically when it stops? It fails about once a week.",
    ),
    (
        Category::MonitoringRemediation,
        "C: drive almost full on DC01",
        "The disk space alert for C: on DC01 fired again this morning (97% used). Please clean it up before the server stops.",
    ),
    // change-management
    (
        Category::ChangeManagement,
        "Change request: upgrade IIS config",
        "Attached is change request CHG0045512 approved by our CAB. Please apply the TLS hardening on the two web servers in Sunday's 02:00-04:00 window; backout is restoring the registry export.",
    ),
    (
        Category::ChangeManagement,
        "Planned change for the SQL servers",
        "We need a planned change to move the SQL tempdb files to the new disk on both nodes, one at a time, during the approved maintenance window next Tuesday. Rollback plan included.",
    ),
    (
        Category::ChangeManagement,
        "Emergency change approval",
        "Our change advisory board approved an emergency change to disable SMBv1 on all servers tonight. Please schedule the work and confirm the engineer.",
    ),
    // patching
    (
        Category::Patching,
        "Skip this month's updates on SQL01",
        "Please leave SQL01 out of this month's Windows patch run; the vendor has not certified the latest cumulative update yet.",
    ),
    (
        Category::Patching,
        "Servers missing security updates",
        "Our vulnerability scan shows the Linux VMs are missing the latest security updates. Can you apply them and reboot tonight?",
    ),
    (
        Category::Patching,
        "Patch compliance report",
        "Could you send us a report of which updates were installed on our servers in the last two patch cycles?",
    ),
    // other
    (
        Category::Other,
        "Lunch on Friday",
        "Hi Sam, are we still on for lunch on Friday at the Italian place? Let me know if 12:30 works.",
    ),
    (
        Category::Other,
        "Thanks!",
        "Just a short note to thank the whole team for the help last week. Great job, much appreciated.",
    ),
    (
        Category::Other,
        "Grow your MSP revenue by 30%",
        "Partners like you use our platform to upsell managed services. Book a demo this week and get 20% off your first year. Unsubscribe here.",
    ),
];

#[test]
fn hand_written_mails_get_their_category() {
    let classifier = classifier();
    let mut failures = Vec::new();
    for (expected, subject, text) in MAILS {
        let classification = classifier.classify(&mail("pat@acme.example", subject, text));
        if classification.category != *expected {
            failures.push(format!(
                "{subject:?}: expected {expected}, got {} ({:?})",
                classification.category, classification.reasons
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} misclassified:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for category in Category::ALL {
        assert_eq!(
            MAILS
                .iter()
                .filter(|(expected, _, _)| *expected == category)
                .count(),
            3,
            "{category}"
        );
    }
}

#[test]
fn microsoft_flag_needs_an_ongoing_outage_or_an_escalation() {
    let classifier = classifier();
    let cases = [
        ("Everything in North Europe unreachable", MAILS[9].2, true),
        ("Service Health: Cosmos DB degraded", MAILS[10].2, true),
        ("Maintenance next weekend?", MAILS[11].2, false),
        (
            "Outage last Tuesday - RCA?",
            "Last Tuesday our site in UK South was down for 40 minutes. It has been fine since then. Can you send Microsoft's root cause analysis for our records?",
            false,
        ),
        (
            "Is Azure having problems?",
            "Is there an issue with Azure in Central US? Just checking, we saw a tweet about it.",
            false,
        ),
        (
            "Planned maintenance notice",
            "We received a planned maintenance notification for our VMs in East US next week. Will the servers be rebooted during scheduled maintenance?",
            false,
        ),
        ("Please get Microsoft involved", MAILS[21].2, true),
        (
            "Key Vault timeouts in North Europe",
            "Our app started timing out on Key Vault calls about 15 minutes ago. The Azure status page has it as active for North Europe. Anything we can do until Microsoft fixes it?",
            true,
        ),
    ];
    for (subject, text, expected) in cases {
        let classification = classifier.classify(&mail("pat@acme.example", subject, text));
        assert_eq!(
            classification.microsoft, expected,
            "{subject}: {:?}",
            classification.reasons
        );
    }
}

#[test]
fn tier_applies_whatever_the_category() {
    let classifier = classifier();
    let managed = classifier.classify(&mail(
        "pat@acme.example",
        "Patch 33333333-3333-4333-8333-333333333333",
        "Please install this month's patches on the servers in that subscription.",
    ));
    assert_eq!(
        (managed.tier, managed.category, managed.in_scope),
        (Tier::ManagedOs, Category::Patching, true)
    );
    let platform = classifier.classify(&mail(
        "pat@acme.example",
        "Patches",
        "Please install this month's patches on our servers.",
    ));
    assert_eq!(
        (platform.tier, platform.category, platform.in_scope),
        (Tier::Platform, Category::Patching, false)
    );
    let stranger = classifier.classify(&mail(
        "someone@unknown.example",
        "Open an account",
        "We would like to open an Azure account through you with ElasticBox. How does sign-up work?",
    ));
    assert_eq!(
        (
            stranger.tier,
            stranger.category,
            stranger.in_scope,
            stranger.microsoft
        ),
        (Tier::Unmanaged, Category::AccountSetup, false, false)
    );
}
