"""`mailer demo`: the whole job on embedded defaults, with an embedded SMTP server."""
