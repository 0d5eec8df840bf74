"""FastSecure password accounts: hashing, a rate-limited login, the account flows and mail.

``PasswordAuthenticationProvider`` checks a login identifier and a password;
``PasswordAccounts`` runs registration, e-mail verification, password reset and change on
top of it and hands a successful login to the provider that issues the credential.
"""

from .flows import FlowLimits as FlowLimits
from .flows import InvalidTokenError as InvalidTokenError
from .flows import LoginRefusedError as LoginRefusedError
from .flows import MailTemplates as MailTemplates
from .flows import PasswordAccounts as PasswordAccounts
from .flows import WrongPasswordError as WrongPasswordError
from .hashing import PasswordHasher as PasswordHasher
from .mail import ConsoleMailer as ConsoleMailer
from .mail import MailDeliveryError as MailDeliveryError
from .mail import Mailer as Mailer
from .mail import OutboxMailer as OutboxMailer
from .mail import SMTPMailer as SMTPMailer
from .policy import PasswordPolicy as PasswordPolicy
from .policy import PasswordRejectedError as PasswordRejectedError
from .provider import LoginLimits as LoginLimits
from .provider import PasswordAuthenticationProvider as PasswordAuthenticationProvider
from .provider import normalize_login as normalize_login
from .users import MemoryUserStore as MemoryUserStore

__all__ = [
    "ConsoleMailer",
    "FlowLimits",
    "InvalidTokenError",
    "LoginLimits",
    "LoginRefusedError",
    "MailDeliveryError",
    "MailTemplates",
    "Mailer",
    "MemoryUserStore",
    "OutboxMailer",
    "PasswordAccounts",
    "PasswordAuthenticationProvider",
    "PasswordHasher",
    "PasswordPolicy",
    "PasswordRejectedError",
    "SMTPMailer",
    "WrongPasswordError",
    "normalize_login",
]
