"""Mail: headers and messages (pure), rendering, the SMTP seam, transactional mail."""
