"""Tests of mailer/mail/: headers, messages, templates, transactional mail, the SMTP seam."""
