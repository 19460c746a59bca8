//! Text output of `queue list`, `queue show` and `ticket show`.

use std::fmt::Write;

use supportd_core::Priority;
use supportd_store::{QueueSummary, TicketDetail, TicketSummary};

/// A duration in seconds as "3d 4h", "5h 10m" or "12m".
pub fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m")
    }
}

/// Unix seconds as an ISO 8601 UTC time.
pub fn timestamp(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| seconds.to_string())
}

pub fn queue_list(summaries: &[QueueSummary], now: i64) -> String {
    let mut text = format!(
        "{:<22} {:>6} {:>8} {:>8} {:>10}  {}\n",
        "QUEUE", "OPEN", "PENDING", "OVERDUE", "OLDEST", "BY PRIORITY (urgent/high/normal/low)"
    );
    for summary in summaries {
        let count = |priority: Priority| {
            summary
                .open_by_priority
                .iter()
                .find(|(candidate, _)| *candidate == priority)
                .map_or(0, |(_, count)| *count)
        };
        let oldest = summary
            .oldest_open_created_at
            .map_or_else(|| "-".to_owned(), |created_at| age(now - created_at));
        let _ = writeln!(
            text,
            "{:<22} {:>6} {:>8} {:>8} {:>10}  {}/{}/{}/{}",
            summary.queue.as_str(),
            summary.open,
            summary.pending_customer,
            summary.overdue,
            oldest,
            count(Priority::Urgent),
            count(Priority::High),
            count(Priority::Normal),
            count(Priority::Low),
        );
    }
    text
}

pub fn queue_show(tickets: &[TicketSummary], now: i64) -> String {
    let mut text = format!(
        "{:<9} {:<8} {:<16} {:<10} {:<24} {:<28} {:>7}  {}\n",
        "TICKET", "PRIORITY", "STATUS", "TIER", "CATEGORY", "FROM", "AGE", "SUBJECT"
    );
    for ticket in tickets {
        let (tier, category) = ticket.labels.map_or(("-", "-"), |labels| {
            (labels.tier.slug(), labels.category.slug())
        });
        let from = ticket
            .requester
            .as_ref()
            .map_or("-", |address| address.email.as_str());
        let overdue = if ticket.first_response_due < now {
            " (overdue)"
        } else {
            ""
        };
        let _ = writeln!(
            text,
            "{:<9} {:<8} {:<16} {:<10} {:<24} {:<28} {:>7}  {}{}",
            ticket.ticket_ref.to_string(),
            ticket.priority.slug(),
            ticket.status.slug(),
            tier,
            category,
            truncate(from, 28),
            age(now - ticket.created_at),
            truncate(&ticket.subject, 60),
            overdue,
        );
    }
    if tickets.is_empty() {
        text.push_str("(no tickets)\n");
    }
    text
}

pub fn ticket_show(detail: &TicketDetail) -> String {
    let ticket = &detail.ticket;
    let mut text = String::new();
    let _ = writeln!(text, "{}  {}", ticket.ticket_ref, ticket.subject);
    let _ = writeln!(
        text,
        "queue {}  status {}  priority {}  first response due {}",
        ticket.queue,
        ticket.status,
        ticket.priority,
        timestamp(ticket.first_response_due)
    );
    if let Some(requester) = &ticket.requester {
        let _ = writeln!(text, "from {}", display_address(requester));
    }
    if let Some(labels) = &ticket.labels {
        let _ = writeln!(
            text,
            "tier {}  category {}  in_scope {}  microsoft {}  confidence {:.2}",
            labels.tier, labels.category, labels.in_scope, labels.microsoft, labels.confidence
        );
    }
    for route in &detail.routes {
        let _ = writeln!(text, "\nRouting (rule `{}`):", route.route.rule);
        for reason in &route.route.reasons {
            let _ = writeln!(text, "  - {reason}");
        }
    }
    for (index, message) in detail.messages.iter().enumerate() {
        let _ = writeln!(
            text,
            "\nMessage {} of {}: {}",
            index + 1,
            detail.messages.len(),
            message.subject
        );
        if let Some(from) = &message.from {
            let _ = writeln!(text, "  From: {}", display_address(from));
        }
        let _ = writeln!(text, "  Received: {}", timestamp(message.received_at));
        let _ = writeln!(text, "  Message-ID: <{}>", message.message_id);
        if let Some(reason) = &message.quarantine_reason {
            let _ = writeln!(
                text,
                "  QUARANTINED: {reason} ({} bytes kept raw)",
                message.size
            );
        }
        for attachment in &message.attachments {
            let _ = writeln!(
                text,
                "  Attachment: {} ({}, {} bytes)",
                attachment.filename, attachment.content_type, attachment.size
            );
        }
        if let Some(classification) = &message.classification {
            let _ = writeln!(text, "  Classification:");
            for reason in &classification.reasons {
                let _ = writeln!(text, "    - {reason}");
            }
        }
        if !message.body_text.is_empty() {
            let _ = writeln!(text);
            for line in message.body_text.lines() {
                let _ = writeln!(text, "  | {line}");
            }
        }
    }
    let _ = writeln!(text, "\nAudit trail:");
    for event in &detail.audit_events {
        let _ = writeln!(
            text,
            "  {}  {:<18} {:<10} {}",
            timestamp(event.at),
            event.kind.slug(),
            event.actor,
            event.detail
        );
    }
    text
}

fn display_address(address: &supportd_core::Address) -> String {
    match &address.name {
        Some(name) => format!("{name} <{}>", address.email),
        None => address.email.clone(),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(59), "0m");
        assert_eq!(age(3_660), "1h 1m");
        assert_eq!(age(90_000), "1d 1h");
        assert_eq!(age(-5), "0m");
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
