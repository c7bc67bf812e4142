"""The words of the bank's mail, in the recipient's language (pure: no I/O).

One subject and body per template and language, filled with the payload's values (a code).
"""

from __future__ import annotations

from dataclasses import dataclass

_SIGNATURE = {
    "ja": "さっぽろ市民情報銀行\nこのメールには返信できません。",
    "en": "Sapporo City Information Bank\nPlease do not reply to this mail.",
}

_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "verify_email": {
        "ja": (
            "メールアドレスの確認コード",
            "登録を続けるには、画面に次の確認コードを入力してください(有効期限15分)。\n\n"
            "    {code}\n\n"
            "お心当たりがない場合は、このメールを破棄してください。",
        ),
        "en": (
            "Your confirmation code",
            "To finish creating your account, enter this code (valid 15 minutes):\n\n"
            "    {code}\n\n"
            "If you did not ask for it, ignore this mail.",
        ),
    },
    "reset_password": {
        "ja": (
            "パスワード再設定コード",
            "パスワードを再設定するには、画面に次のコードを入力してください(有効期限15分)。\n\n"
            "    {code}\n\n"
            "お心当たりがない場合は、このメールを破棄してください。パスワードは変わりません。",
        ),
        "en": (
            "Your password reset code",
            "To choose a new password, enter this code (valid 15 minutes):\n\n"
            "    {code}\n\n"
            "If you did not ask for it, ignore this mail: your password stays as it is.",
        ),
    },
    "account_exists": {
        "ja": (
            "このメールアドレスは登録済みです",
            "このアドレスで新規登録の申し込みがありましたが、すでにアカウントがあります。\n"
            "サインインするか、パスワードをお忘れの場合は再設定してください。\n"
            "お心当たりがない場合は、このメールを破棄してください。",
        ),
        "en": (
            "You already have an account",
            "Someone asked to create an account with this address, which already has one.\n"
            "Sign in, or reset your password if you have forgotten it.\n"
            "If it was not you, ignore this mail.",
        ),
    },
}

TEMPLATES = frozenset(_TEXTS)


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


def mail_text(template: str, language: str, payload: dict[str, str]) -> MailText:
    """The mail's subject and body; Japanese for a language it does not have. KeyError for a
    template it does not know or a payload that lacks a value the template needs."""
    texts = _TEXTS[template]
    language = language if language in texts else "ja"
    subject, body = texts[language]
    return MailText(subject, f"{body.format(**payload)}\n\n-- \n{_SIGNATURE[language]}\n")
