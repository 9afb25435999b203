"""Server-rendered pages, one module per audience: annotators label (``annotator``),
researchers run projects (``research``) and read their agreement (``analysis``) and quality
controls (``quality``), governance handles takedowns, consent and licenses
(``governance``), auditors read (``auditor``).

Views are thin: check the role (``core.pages.role_required``), call a selector or a
service, render. An ``ApplicationError`` from a service becomes a page or a form error
carrying the error's HTTP status (400/403/404/409/413), never a 500. Auditors never write:
any unsafe method from an auditor is refused before the view runs.
"""
