//! A file's type, from its first bytes only (never from what the client
//! says), and an image's pixel size from its header.

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: &'static str,
    /// PNG, JPEG, GIF or WebP: shown inline. Everything else (SVG included)
    /// is served as an attachment.
    pub inline_image: bool,
}

/// How many leading bytes [`sniff`] and [`image_size`] look at.
pub const HEAD_BYTES: usize = 64 * 1024;

pub fn sniff(head: &[u8]) -> Sniffed {
    let image = |content_type| Sniffed {
        content_type,
        inline_image: true,
    };
    let other = |content_type| Sniffed {
        content_type,
        inline_image: false,
    };
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return image("image/png");
    }
    if head.starts_with(&[0xff, 0xd8, 0xff]) {
        return image("image/jpeg");
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return image("image/gif");
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        return image("image/webp");
    }
    if head.starts_with(b"%PDF-") {
        return other("application/pdf");
    }
    if head.starts_with(b"PK\x03\x04") {
        return other("application/zip");
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return other("application/gzip");
    }
    if head.contains(&0) {
        return other("application/octet-stream");
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut by the end of the head is still text.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return other("application/octet-stream"),
    };
    let start = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(256)
        .collect::<String>()
        .to_ascii_lowercase();
    if start.contains("<svg") {
        return other("image/svg+xml");
    }
    if start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || start.starts_with("<head")
        || start.starts_with("<body")
        || start.starts_with("<script")
        || start.starts_with("<iframe")
        || start.starts_with("<!--")
    {
        return other("text/html");
    }
    if start.starts_with("<?xml") {
        return other("application/xml");
    }
    other("text/plain; charset=utf-8")
}

/// Width and height of an inline image, from its header.
pub fn image_size(head: &[u8]) -> Option<(u32, u32)> {
    let size = imagesize::blob_size(head).ok()?;
    Some((
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....").content_type, "image/png");
        assert!(sniff(b"GIF89a....").inline_image);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").content_type, "image/webp");
        assert_eq!(sniff(b"%PDF-1.7").content_type, "application/pdf");
        let html = sniff(b"  <!DOCTYPE html><script>alert(1)</script>");
        assert_eq!(html.content_type, "text/html");
        assert!(!html.inline_image);
        let svg = sniff(b"<?xml version=\"1.0\"?><svg onload=\"alert(1)\"/>");
        assert_eq!(svg.content_type, "image/svg+xml");
        assert!(!svg.inline_image);
        assert_eq!(
            sniff("héllo".as_bytes()).content_type,
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(&[0xc3]).content_type, "text/plain; charset=utf-8");
        assert_eq!(
            sniff(&[0xff, 0xfe, 0x00]).content_type,
            "application/octet-stream"
        );
    }

    #[test]
    fn image_sizes_come_from_the_header() {
        // A 1x1 GIF.
        let gif = b"GIF89a\x03\x00\x02\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04";
        assert_eq!(image_size(gif), Some((3, 2)));
        assert_eq!(image_size(b"not an image"), None);
    }
}
