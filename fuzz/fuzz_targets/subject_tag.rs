//! The subject's ticket tag (`[CS-1042]`): any subject gives a tag or none,
//! and a tag found prints back to something found again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supportd_core::TicketRef;

fuzz_target!(|subject: &str| {
    if let Some(ticket_ref) = TicketRef::find_in_subject(subject) {
        let tagged = format!("Re: [{ticket_ref}] {subject}");
        assert_eq!(TicketRef::find_in_subject(&tagged), Some(ticket_ref));
    }
});
