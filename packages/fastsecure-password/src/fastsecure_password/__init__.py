"""FastSecure password accounts: hashing, a rate-limited login, the account flows and mail.

``PasswordAuthenticationProvider`` checks a login identifier and a password;
``PasswordAccounts`` runs registration, e-mail verification, password reset and change on
top of it and hands a successful login to the provider that issues the credential.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
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
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "FlowLimits": ".flows",
            "InvalidTokenError": ".flows",
            "LoginRefusedError": ".flows",
            "MailTemplates": ".flows",
            "PasswordAccounts": ".flows",
            "WrongPasswordError": ".flows",
            "PasswordHasher": ".hashing",
            "ConsoleMailer": ".mail",
            "MailDeliveryError": ".mail",
            "Mailer": ".mail",
            "OutboxMailer": ".mail",
            "SMTPMailer": ".mail",
            "PasswordPolicy": ".policy",
            "PasswordRejectedError": ".policy",
            "LoginLimits": ".provider",
            "PasswordAuthenticationProvider": ".provider",
            "normalize_login": ".provider",
            "MemoryUserStore": ".users",
        },
    )

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
