"""Japanese and English wording of the landing page and the development pages.

One dictionary beside the sign-in pages' (bank.identity.i18n), whose words the layout uses; a
test checks that every key has both languages and that none repeats one of theirs.
"""

from __future__ import annotations

from bank.identity.i18n import translator as identity_translator

MESSAGES: dict[str, dict[str, str]] = {
    # the landing page
    "welcome_title": {
        "ja": "さっぽろ市民情報銀行へようこそ",
        "en": "Welcome to the Sapporo City Information Bank",
    },
    "welcome_lead": {
        "ja": (
            "市民のみなさんが歩数・交通系ICカードの乗車履歴・健診の結果を預け、どの企業に何を"
            "どの目的で渡すかをご自身で決める情報銀行です。預かったデータは暗号化して保管します。"
        ),
        "en": (
            "Residents deposit their steps, transit card rides and checkup results here, "
            "encrypted, and decide themselves which company may receive what, and for what."
        ),
    },
    "residents_heading": {"ja": "市民の方", "en": "For residents"},
    "link_mypage": {"ja": "マイページ", "en": "My page"},
    "link_mypage_hint": {
        "ja": "預けているデータの確認、カードの登録、データの書き出し",
        "en": "See what you deposited, link cards, export your data",
    },
    "link_signin": {"ja": "サインイン", "en": "Sign in"},
    "link_signup": {"ja": "新規登録", "en": "Create an account"},
    "link_reset": {"ja": "パスワードの再設定", "en": "Reset your password"},
    "developers_heading": {"ja": "開発者の方", "en": "For developers"},
    "link_docs": {"ja": "API ドキュメント(Swagger UI)", "en": "API documentation (Swagger UI)"},
    "link_docs_hint": {
        "ja": "OpenAPI 3.1。「Authorize」でトークンを取得して試せます。",
        "en": "OpenAPI 3.1; its Authorize button obtains a token to try the API with.",
    },
    "link_problems": {"ja": "エラーの種類の一覧", "en": "Problem types (every error code)"},
    "link_metadata": {
        "ja": "認可サーバーのメタデータ(OAuth 2.0)",
        "en": "Authorization server metadata (OAuth 2.0)",
    },
    "demo_heading": {"ja": "デモ(開発環境)", "en": "Demo (development)"},
    "demo_lead": {
        "ja": (
            "架空の市民のデータです(実在の人物ではありません)。この欄は開発環境でだけ表示されます。"
        ),
        "en": "Synthetic people, not real ones. This section is shown in development only.",
    },
    "demo_residents_caption": {
        "ja": "デモ用の市民アカウント",
        "en": "Demo residents' sign-ins",
    },
    "demo_no_residents": {
        "ja": "デモ用の市民アカウントはまだありません。次のコマンドが作ります:",
        "en": "No demo residents yet; this command makes them:",
    },
    "demo_app_caption": {"ja": "デモ用の市民アプリ", "en": "Demo residents' app"},
    "client_id": {"ja": "クライアントID", "en": "Client ID"},
    "scope": {"ja": "スコープ", "en": "Scope"},
    "redirect_uris": {"ja": "リダイレクトURI", "en": "Redirect URIs"},
    "demo_cli": {
        "ja": "同じ内容は次のコマンドでいつでも表示できます:",
        "en": "This command prints the same at any time:",
    },
    "demo_try": {
        "ja": (
            "認可コード + PKCE の手順は README の「最初の API 呼び出し」にあります。"
            "コードはこの銀行の開発用ページ(/dev/callback)に届きます。"
        ),
        "en": (
            'README, "A first API call", walks through the authorization code + PKCE sign-in; '
            "the code lands on this bank's development page (/dev/callback)."
        ),
    },
    # the development callback page
    "callback_title": {"ja": "認可コードを受け取りました", "en": "Authorization code received"},
    "callback_error_title": {
        "ja": "認可は完了しませんでした",
        "en": "The authorization did not complete",
    },
    "dev_only": {
        "ja": (
            "このページは開発環境でだけ表示されます。"
            "本番のアプリは自分のリダイレクトURIでコードを受け取ります。"
        ),
        "en": (
            "This page exists in development only; a real app receives the code at its own "
            "redirect URI."
        ),
    },
    "callback_code": {"ja": "認可コード", "en": "Code"},
    "callback_state": {"ja": "state", "en": "State"},
    "callback_iss": {"ja": "発行者(iss)", "en": "Issuer (iss)"},
    "callback_next": {
        "ja": (
            "このコードを、認可リクエストに使った code_challenge の元の値(code_verifier)と"
            "一緒にトークンと交換します。コードは1回だけ、発行から数分の間だけ使えます。"
        ),
        "en": (
            "Exchange the code for tokens with the code_verifier your code_challenge was made "
            "from. A code works once, for a few minutes."
        ),
    },
    "callback_request": {"ja": "トークンのリクエスト", "en": "The token request"},
    "callback_verifier": {
        "ja": "$VERIFIER には code_verifier を入れてください(README の手順では設定済みです)。",
        "en": "$VERIFIER stands for your code_verifier (the README's steps set it).",
    },
    "callback_then": {
        "ja": "返ってきた access_token で API を呼び出します。",
        "en": "Then call the API with the access_token it returns:",
    },
    "callback_error": {"ja": "エラー", "en": "Error"},
    "callback_error_description": {"ja": "説明", "en": "Description"},
    "callback_no_code": {
        "ja": "このページは認可コードを受け取るためのものです。",
        "en": "This page receives authorization codes.",
    },
    "back_home": {"ja": "トップページへ", "en": "Home"},
    # the development mail sink
    "link_mail": {"ja": "開発用のメール受信箱", "en": "Development mail sink"},
    "link_mail_hint": {
        "ja": "新規登録やパスワード再設定の確認コードはここに届きます",
        "en": "Sign-up and password reset codes arrive here",
    },
    "mail_title": {"ja": "開発用のメール受信箱", "en": "Development mail sink"},
    "mail_lead": {
        "ja": (
            "開発環境では SMTP サーバーを設定しないかぎりメールを送らず、ここに表示します"
            "(新しい順、最大20通)。コマンドでは bank mail list で見られます。"
        ),
        "en": (
            "In development, with no SMTP server set, the bank sends no mail and shows it here "
            "instead (newest first, 20 at most); bank mail list prints the same."
        ),
    },
    "mail_smtp": {
        "ja": "SMTP サーバーが設定されているため、送信済みのメールはここに表示されません。",
        "en": "An SMTP server is set: mail it has sent is not shown here.",
    },
    "mail_none": {"ja": "メールはまだありません。", "en": "No mail yet."},
    "mail_to": {"ja": "宛先", "en": "To"},
    "mail_code": {"ja": "コード", "en": "Code"},
    "mail_language": {"ja": "言語", "en": "Language"},
    "mail_verify_email": {"ja": "メールアドレスの確認コード", "en": "Confirmation code"},
    "mail_reset_password": {"ja": "パスワード再設定コード", "en": "Password reset code"},
    "mail_account_exists": {
        "ja": "登録済みアドレスへのお知らせ",
        "en": "Notice: the address has an account",
    },
}


def translator(language: str) -> dict[str, str]:
    """The sign-in pages' words and these, in one language."""
    return {
        **identity_translator(language),
        **{key: texts[language] for key, texts in MESSAGES.items()},
    }
