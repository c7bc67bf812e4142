"""Japanese and English wording of the sign-in pages, and how a page picks its language.

A dictionary rather than gettext catalogues: a few dozen strings in two languages, reviewed
side by side, with a test that every key has both. Order of choice: the `lang` query
parameter (the switch on every page), the `bank_lang` cookie it sets, Accept-Language, Japanese.
"""

from __future__ import annotations

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
LANGUAGE_COOKIE = "bank_lang"

MESSAGES: dict[str, dict[str, str]] = {
    "bank_name": {"ja": "さっぽろ市民情報銀行", "en": "Sapporo City Information Bank"},
    "switch_to": {"ja": "English", "en": "日本語"},
    "switch_label": {"ja": "Language / 言語", "en": "言語 / Language"},
    "signin_title": {"ja": "サインイン", "en": "Sign in"},
    "email": {"ja": "メールアドレス", "en": "Email address"},
    "password": {"ja": "パスワード", "en": "Password"},
    "password_hint": {
        "ja": "12文字以上。よく使われるパスワードは使えません。",
        "en": "At least 12 characters; common passwords are refused.",
    },
    "signin_button": {"ja": "サインイン", "en": "Sign in"},
    "signin_failed": {
        "ja": (
            "メールアドレスまたはパスワードが正しくありません。"
            "失敗が続くと一時的にサインインできなくなります。"
        ),
        "en": (
            "The email address or password is wrong. "
            "After repeated failures sign-in pauses for a while."
        ),
    },
    "no_account": {"ja": "アカウントをお持ちでない方", "en": "No account yet?"},
    "signup_link": {"ja": "新規登録", "en": "Create an account"},
    "forgot": {"ja": "パスワードをお忘れの方", "en": "Forgot your password?"},
    "reset_link": {"ja": "パスワードの再設定", "en": "Reset it"},
    "signup_title": {"ja": "新規登録", "en": "Create an account"},
    "signup_button": {"ja": "登録して確認コードを受け取る", "en": "Create and send me a code"},
    "verify_title": {"ja": "メールアドレスの確認", "en": "Confirm your email address"},
    "verify_sent": {
        "ja": "登録されたアドレスに6桁の確認コードを送りました(有効期限15分)。",
        "en": (
            "If the address can be registered, we have mailed it a 6-digit code (valid 15 minutes)."
        ),
    },
    "code": {"ja": "確認コード(6桁)", "en": "Code (6 digits)"},
    "verify_button": {"ja": "確認する", "en": "Confirm"},
    "code_failed": {
        "ja": "コードが正しくないか、期限が切れています。",
        "en": "The code is wrong or has expired.",
    },
    "not_verified": {
        "ja": "メールアドレスの確認が済んでいません。届いたコードを入力してください。",
        "en": "Your email address is not confirmed yet. Enter the code we mailed you.",
    },
    "resend_button": {"ja": "コードを再送する", "en": "Send a new code"},
    "totp_title": {"ja": "二段階認証", "en": "Two-step verification"},
    "totp_code": {
        "ja": "認証アプリの6桁のコード",
        "en": "6-digit code from your authenticator app",
    },
    "totp_failed": {"ja": "コードが正しくありません。", "en": "That code is not valid."},
    "reset_title": {"ja": "パスワードの再設定", "en": "Reset your password"},
    "reset_button": {"ja": "再設定コードを送る", "en": "Send me a reset code"},
    "reset_sent": {
        "ja": "登録されているアドレスであれば、再設定コードを送りました(有効期限15分)。",
        "en": "If the address is registered, we have mailed it a reset code (valid 15 minutes).",
    },
    "new_password": {"ja": "新しいパスワード", "en": "New password"},
    "reset_confirm_button": {"ja": "パスワードを変更する", "en": "Change password"},
    "reset_done": {
        "ja": "パスワードを変更しました。新しいパスワードでサインインしてください。",
        "en": "Your password has been changed. Sign in with the new one.",
    },
    "weak_password": {
        "ja": (
            "このパスワードは使えません(12文字以上で、よく使われるものや推測しやすいものは不可)。"
        ),
        "en": "That password cannot be used (12+ characters, not common or easy to guess).",
    },
    "invalid_email": {
        "ja": "メールアドレスの形式が正しくありません。",
        "en": "Enter an email address such as taro@example.jp.",
    },
    "csrf_failed": {
        "ja": "ページの有効期限が切れました。もう一度お試しください。",
        "en": "This page expired. Please try again.",
    },
    "account_title": {"ja": "アカウント", "en": "Your account"},
    "signed_in_as": {"ja": "サインイン中です。", "en": "You are signed in."},
    "signout_button": {"ja": "サインアウト", "en": "Sign out"},
    "signed_out": {"ja": "サインアウトしました。", "en": "You have signed out."},
    "error_title": {"ja": "リクエストを処理できません", "en": "This request cannot be handled"},
    "bad_authorize": {
        "ja": "アプリからのサインイン要求が正しくありません。アプリからやり直してください。",
        "en": "The app's sign-in request is not valid. Start again from the app.",
    },
    "back_to_signin": {"ja": "サインイン画面へ", "en": "Back to sign in"},
    "error_summary": {"ja": "エラー", "en": "Error"},
}


def parse_accept_language(header: str | None) -> list[str]:
    """Primary language tags by descending q (RFC 9110 §12.5.4); malformed parts are skipped."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            ranked.append((-quality, position, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return str(candidate)
    for tag in parse_accept_language(accept_language):
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def translator(language: str) -> dict[str, str]:
    return {key: texts[language] for key, texts in MESSAGES.items()}
