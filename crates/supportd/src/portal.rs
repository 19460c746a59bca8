//! Tickets from the MSP Portal and phone agents (`POST /api/tickets`): the
//! request becomes a plain-text RFC 5322 message and goes through
//! [`Application::ingest`], the same normalise, classify, route and store path
//! as mail. Its Message-ID comes from the web crate (derived from the
//! Idempotency-Key when there is one), so a retried request is a duplicate.

use std::sync::Arc;

use supportd_store::{SourceKind, SourcePosition};
use supportd_web::{IntakeFuture, PortalTicket, TicketIntake};

use crate::Application;

/// The [`TicketIntake`] `serve` gives the web server.
pub struct PipelineIntake {
    pub application: Arc<Application>,
}

impl TicketIntake for PipelineIntake {
    fn create(&self, ticket: PortalTicket) -> IntakeFuture<'_> {
        Box::pin(async move {
            let raw = raw_message(&ticket);
            let source = SourcePosition::new(SourceKind::Api, ticket.channel.slug());
            let mut outcomes = self.application.ingest(vec![(raw, source)]).await?;
            outcomes
                .pop()
                .ok_or_else(|| anyhow::anyhow!("the store answered no outcome for the ticket"))
        })
    }
}

/// The message of an API ticket. The web crate has refused control
/// characters in every header field, so nothing here can start a new header;
/// non-ASCII text is sent as UTF-8 (RFC 6532), which the normaliser reads.
pub fn raw_message(ticket: &PortalTicket) -> Vec<u8> {
    let from = match &ticket.requester_name {
        Some(name) => format!(
            "\"{}\" <{}>",
            name.replace(['"', '\\'], ""),
            ticket.requester_email
        ),
        None => format!("<{}>", ticket.requester_email),
    };
    let mut body = ticket.body.replace("\r\n", "\n");
    let mut facts = Vec::new();
    if let Some(subscription_id) = &ticket.subscription_id {
        facts.push(format!("Subscription ID: {subscription_id}"));
    }
    if let Some(tenant_id) = &ticket.tenant_id {
        facts.push(format!("Tenant ID: {tenant_id}"));
    }
    if !facts.is_empty() {
        body.push_str("\n\n");
        body.push_str(&facts.join("\n"));
    }
    let text = format!(
        "From: {from}\nTo: support@supportd.invalid\nSubject: {subject}\nMessage-ID: <{message_id}>\n\
         X-Supportd-Channel: {channel}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\n\n{body}\n",
        subject = ticket.subject,
        message_id = ticket.message_id,
        channel = ticket.channel.slug(),
    );
    text.replace('\n', "\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use supportd_web::Channel;

    #[test]
    fn an_api_ticket_reads_back_as_the_message_it_describes() {
        let ticket = PortalTicket {
            channel: Channel::Phone,
            requester_email: "ana@example.com".to_owned(),
            requester_name: Some("Ana \"A\" Ñúñez".to_owned()),
            subject: "Facture en double – juillet".to_owned(),
            body: "Two invoices\r\nfor one month.".to_owned(),
            subscription_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e".to_owned()),
            tenant_id: None,
            message_id: "api-1@supportd.invalid".to_owned(),
        };
        let raw = raw_message(&ticket);
        let limits = supportd_mail::Limits::DEFAULT;
        let supportd_mail::Normalised::Message(message) = supportd_mail::normalise(&raw, &limits)
        else {
            panic!("an API ticket must parse");
        };
        assert_eq!(message.subject, "Facture en double – juillet");
        assert_eq!(message.message_id, "api-1@supportd.invalid");
        let from = message.from.unwrap();
        assert_eq!(from.email, "ana@example.com");
        assert_eq!(from.name.as_deref(), Some("Ana A Ñúñez"));
        assert!(
            message.body_text.contains("Two invoices"),
            "{}",
            message.body_text
        );
        assert!(
            message.body_text.contains("Subscription ID: 0f8fad5b"),
            "{}",
            message.body_text
        );
    }
}
