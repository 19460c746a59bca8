//! What the IMAP benches share: the 4 KB customer mail they seed.

/// A customer mail of about 4 KB with a unique Message-ID.
pub fn mail(index: usize) -> Vec<u8> {
    let mut body = String::new();
    while body.len() < 3_600 {
        body.push_str(
            "Our deployment of the reporting VMs in West Europe keeps failing with an \
             allocation error since this morning, and the portal shows nothing useful. \
             Could you check what is going on with the subscription?\r\n",
        );
    }
    format!(
        "From: Sam Keller <sam@fabrikam-freight.example>\r\n\
         To: CloudSupport@centurylink.com\r\n\
         Subject: Deployment failing ({index})\r\n\
         Date: Wed, 25 Nov 2026 09:14:00 -0600\r\n\
         Message-ID: <bench-{index}@fabrikam-freight.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}
