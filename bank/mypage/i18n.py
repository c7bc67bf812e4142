"""Japanese and English wording of the resident's pages (マイページ), beside the sign-in pages'.

One dictionary as in bank.identity.i18n (reviewed side by side; a test checks that every key has
both languages and that no key repeats one of the sign-in pages'). Dates, months and numbers are
written by the functions below, not by templates, so that both languages follow one rule.
"""

from __future__ import annotations

from datetime import date, datetime

from bank.identity.i18n import translator as identity_translator

MESSAGES: dict[str, dict[str, str]] = {
    # navigation
    "mypage_title": {"ja": "マイページ", "en": "My page"},
    "nav_label": {"ja": "マイページのメニュー", "en": "My page menu"},
    "nav_home": {"ja": "ホーム", "en": "Home"},
    "nav_steps": {"ja": "歩数", "en": "Steps"},
    "nav_rides": {"ja": "乗車履歴", "en": "Rides"},
    "nav_checkup": {"ja": "健診結果", "en": "Checkup"},
    "nav_links": {"ja": "カード・保険証", "en": "Cards and insurance"},
    "nav_export": {"ja": "データの書き出し", "en": "Export my data"},
    "nav_account": {"ja": "アカウント設定", "en": "Account settings"},
    "current_page": {"ja": "(表示中)", "en": "(current page)"},
    # home
    "signed_in_label": {"ja": "サインイン中のアカウント", "en": "Signed in as"},
    "address_unavailable": {
        "ja": "(メールアドレスを表示できません)",
        "en": "(the address cannot be shown)",
    },
    "holdings_title": {"ja": "銀行がお預かりしているデータ", "en": "What the bank holds for you"},
    "holdings_intro": {
        "ja": "あなたのデータは、あなた専用の鍵で暗号化して保管しています。",
        "en": "Your data is stored encrypted under a key of your own.",
    },
    "held_steps": {"ja": "歩数の記録", "en": "Days of steps"},
    "held_rides": {"ja": "地下鉄などの乗車", "en": "Transit rides"},
    "held_checkups": {"ja": "健診結果", "en": "Health checkups"},
    "held_cards": {"ja": "連携中の交通系ICカード", "en": "Linked transit IC cards"},
    "held_members": {"ja": "連携中の保険証(被保険者番号)", "en": "Linked insurance memberships"},
    "unit_days": {"ja": "{n}日分", "en": "{n} days"},
    "unit_rides": {"ja": "{n}回", "en": "{n} rides"},
    "unit_items": {"ja": "{n}件", "en": "{n}"},
    "span": {"ja": "{first}〜{last}", "en": "{first} to {last}"},
    "latest_on": {"ja": "最新: {day}", "en": "latest: {day}"},
    "none_yet": {"ja": "まだありません", "en": "none yet"},
    "pages_title": {"ja": "各ページ", "en": "Pages"},
    "page_steps_hint": {
        "ja": "日ごと・月ごとの歩数とグラフ",
        "en": "Steps by day and by month, with charts",
    },
    "page_rides_hint": {
        "ja": "月ごとの乗車回数と、乗った駅・降りた駅",
        "en": "Rides by month, with the stations",
    },
    "page_checkup_hint": {
        "ja": "最新の健診結果と、基準値に照らした判定",
        "en": "Your latest checkup, judged against the standard values",
    },
    "page_links_hint": {
        "ja": "交通系ICカードや保険証の連携・解除",
        "en": "Link or unlink a transit IC card or an insurance membership",
    },
    "page_export_hint": {
        "ja": "すべてのデータをZIPファイルで受け取る",
        "en": "Get all your data as a ZIP file",
    },
    "page_account_hint": {
        "ja": "パスワードの変更、全端末からのサインアウト、アカウントの削除",
        "en": "Change your password, sign out everywhere, delete your account",
    },
    "unreadable_note": {
        "ja": (
            "開けない記録が{n}件あり、表示から除いています(改ざんや移動の可能性があるため、"
            "運用担当者に通知済みです)。"
        ),
        "en": (
            "{n} stored record(s) do not open and are left out here (they may have been "
            "tampered with or moved; the bank's operators have been alerted)."
        ),
    },
    # where the data came from
    "source_title": {"ja": "データの出どころ", "en": "Where this data came from"},
    "month_nav": {"ja": "表示する月", "en": "Month shown"},
    "previous_month": {"ja": "前の月", "en": "Previous month"},
    "next_month": {"ja": "次の月", "en": "Next month"},
    "data_table": {"ja": "表で見る(グラフと同じ数値)", "en": "As a table (the chart's numbers)"},
    # steps
    "steps_title": {"ja": "歩数", "en": "Steps"},
    "steps_month_heading": {"ja": "{month}の歩数(日ごと)", "en": "Steps in {month}, by day"},
    "steps_year_heading": {
        "ja": "月ごとの1日平均歩数(直近12か月)",
        "en": "Mean daily steps by month (last 12 months)",
    },
    "steps_chart_desc": {
        "ja": "棒の高さがその日の歩数です。記録のない日は棒がありません。",
        "en": "Each bar is one day's steps. Days without a record have no bar.",
    },
    "steps_year_desc": {
        "ja": "棒の高さが、記録のある日の1日平均歩数です。",
        "en": "Each bar is the mean over the days with a record.",
    },
    "steps_month_summary": {
        "ja": "記録のある日: {days}日 / 合計: {total}歩 / 1日平均: {mean}歩",
        "en": "Days recorded: {days} · total: {total} steps · daily mean: {mean} steps",
    },
    "steps_none": {"ja": "この月の歩数の記録はありません。", "en": "No steps recorded this month."},
    "steps_source": {
        "ja": (
            "スマートフォンのヘルスケアアプリや活動量計から、あなたのアプリが送った記録です。"
            "同じ日に複数の記録元があるときは、最も多い歩数をその日の歩数とします(二重に数えません)。"
        ),
        "en": (
            "Sent by your app from your phone's health app or a tracker. When a day has more "
            "than one source, the day counts the highest (never the sum)."
        ),
    },
    "col_day": {"ja": "日付", "en": "Day"},
    "col_steps": {"ja": "歩数", "en": "Steps"},
    "col_sources": {"ja": "記録元", "en": "Source"},
    "col_month": {"ja": "月", "en": "Month"},
    "col_mean_steps": {"ja": "1日平均歩数", "en": "Mean daily steps"},
    "col_days_recorded": {"ja": "記録のある日数", "en": "Days recorded"},
    "steps_n": {"ja": "{n}歩", "en": "{n} steps"},
    "mean_steps_n": {"ja": "1日平均 {n}歩", "en": "{n} steps a day on average"},
    "rides_n": {
        "ja": "{n}回(うち入場・出場がそろった乗車 {complete}回)",
        "en": "{n} rides ({complete} complete)",
    },
    "no_record": {"ja": "記録なし", "en": "no record"},
    "platform_healthkit": {
        "ja": "iPhoneのヘルスケア(HealthKit)",
        "en": "Apple Health (HealthKit)",
    },
    "platform_health_connect": {
        "ja": "Androidのヘルスコネクト",
        "en": "Health Connect (Android)",
    },
    "platform_tracker": {"ja": "活動量計", "en": "Activity tracker"},
    "method_manual": {"ja": "手入力", "en": "entered by hand"},
    # rides
    "rides_title": {"ja": "乗車履歴", "en": "Rides"},
    "rides_year_heading": {
        "ja": "月ごとの乗車回数(直近12か月)",
        "en": "Rides by month (last 12 months)",
    },
    "rides_year_desc": {
        "ja": ("塗りつぶしの棒は入場と出場がそろった乗車、斜線の棒は片方しか記録のない乗車です。"),
        "en": (
            "Solid bars are complete rides (in and out); hatched bars are rides with only "
            "one of the two taps."
        ),
    },
    "legend_complete": {"ja": "入場・出場がそろった乗車", "en": "Complete ride"},
    "legend_incomplete": {"ja": "片方のみの乗車", "en": "Only one tap"},
    "rides_month_heading": {"ja": "{month}の乗車", "en": "Rides in {month}"},
    "rides_month_summary": {
        "ja": "乗車: {rides}回(うち入場・出場がそろった乗車 {complete}回) / 運賃の合計: {fares}円",
        "en": "Rides: {rides} ({complete} complete) · fares: ¥{fares}",
    },
    "rides_none": {"ja": "この月の乗車の記録はありません。", "en": "No rides recorded this month."},
    "rides_source": {
        "ja": (
            "連携した交通系ICカードの乗車記録を、交通事業者が送ったものです(時刻は改札を"
            "通った時刻)。"
        ),
        "en": (
            "Sent by the transit operator for the IC cards you linked (times are when you "
            "passed the gate)."
        ),
    },
    "col_entered": {"ja": "入場", "en": "In"},
    "col_exited": {"ja": "出場", "en": "Out"},
    "col_fare": {"ja": "運賃", "en": "Fare"},
    "col_operator": {"ja": "事業者", "en": "Operator"},
    "col_rides": {"ja": "乗車回数", "en": "Rides"},
    "col_complete_rides": {"ja": "うち入場・出場がそろった乗車", "en": "Of which complete"},
    "no_tap": {"ja": "記録なし", "en": "no tap"},
    "operator_sapporo_subway": {"ja": "札幌市営地下鉄", "en": "Sapporo Municipal Subway"},
    "line_suffix": {"ja": "{line}", "en": "{line} Line"},
    # checkup
    "checkup_title": {"ja": "健診結果", "en": "Checkup results"},
    "checkup_none": {
        "ja": (
            "健診結果はまだ届いていません。保険証(被保険者番号)を連携すると、"
            "保険者から届くようになります。"
        ),
        "en": (
            "No checkup results yet. Link your insurance membership and your insurer's "
            "results will reach you here."
        ),
    },
    "checkup_unreadable": {
        "ja": (
            "最新の健診結果は保管されていますが、開けません(古い結果を代わりに表示することは"
            "しません)。運用担当者に通知済みです。"
        ),
        "en": (
            "Your latest checkup is stored but does not open (an older one is not shown in "
            "its place). The bank's operators have been alerted."
        ),
    },
    "checkup_source": {
        "ja": (
            "{day}に健診機関(医療機関コード {institution})で受けた健診の結果を、"
            "保険者が送ったものです。"
        ),
        "en": (
            "The checkup you had on {day} at the clinic with institution code {institution}, "
            "sent by your insurer."
        ),
    },
    "checkup_explained": {
        "ja": (
            "判定は、特定健診の「保健指導判定値」と「受診勧奨判定値」に照らしたものです。"
            "診断ではありません。気になることは医師や保健師にご相談ください。"
        ),
        "en": (
            "Each value is compared with the specific health checkup's standard values for "
            "health guidance and for seeing a doctor. This is not a diagnosis: ask a doctor "
            "or public health nurse about anything that worries you."
        ),
    },
    "col_item": {"ja": "項目", "en": "Item"},
    "col_value": {"ja": "結果", "en": "Result"},
    "col_judgement": {"ja": "判定", "en": "Judgement"},
    "col_standard": {"ja": "基準値", "en": "Standard values"},
    "judged_normal": {"ja": "基準の範囲内です", "en": "Within the standard range"},
    "judged_guidance": {
        "ja": "保健指導の対象となる値です。生活習慣の見直しをおすすめします",
        "en": "At the level where health guidance is advised: a look at daily habits may help",
    },
    "judged_referral": {
        "ja": "受診をおすすめする値です。医療機関にご相談ください",
        "en": "At the level where seeing a doctor is advised",
    },
    "judged_not_judged": {"ja": "判定の基準がない項目です", "en": "No standard value to judge by"},
    "standard_guidance": {"ja": "保健指導: {value}", "en": "guidance: {value}"},
    "standard_referral": {"ja": "受診勧奨: {value}", "en": "see a doctor: {value}"},
    "at_or_above": {"ja": "{value}以上", "en": "{value} or more"},
    "below": {"ja": "{value}未満", "en": "below {value}"},
    "urine_negative": {"ja": "\u2212(陰性)", "en": "\u2212 (negative)"},  # minus sign
    "urine_trace": {"ja": "±(弱陽性)", "en": "± (trace)"},
    "urine_positive": {"ja": "{level}(陽性)", "en": "{level} (positive)"},
    "fasting_yes": {"ja": "空腹時の採血", "en": "fasting blood sample"},
    "fasting_no": {"ja": "食後の採血", "en": "non-fasting blood sample"},
    # links
    "links_title": {"ja": "カード・保険証の連携", "en": "Cards and insurance"},
    "links_intro": {
        "ja": (
            "連携した番号の記録だけが、交通事業者や保険者からこの銀行に届きます。"
            "番号そのものは保存せず、照合用の値と下4桁などの伏せ字だけを保管します。"
        ),
        "en": (
            "Only records for the numbers you link reach the bank from transit operators and "
            "insurers. The numbers themselves are not stored: only a value to match them by and "
            "a masked form (the last digits)."
        ),
    },
    "links_current": {"ja": "連携中のカード・保険証", "en": "Linked now"},
    "links_none": {"ja": "まだ何も連携していません。", "en": "Nothing is linked yet."},
    "link_kind_transit_card": {"ja": "交通系ICカード", "en": "Transit IC card"},
    "link_kind_insurer_member": {"ja": "保険証", "en": "Insurance membership"},
    "link_label_unreadable": {
        "ja": "(番号の表示を開けません。連携は有効です)",
        "en": "(the masked number does not open; the link still works)",
    },
    "linked_on": {"ja": "{day}に連携", "en": "linked {day}"},
    "unlink_button": {"ja": "{label} の連携を解除", "en": "Unlink {label}"},
    "unlink_note": {
        "ja": "解除すると、以後その番号の記録は受け取りません。お預かり済みの記録は残ります。",
        "en": "After unlinking, new records for the number are refused; stored ones stay yours.",
    },
    "add_card_title": {"ja": "交通系ICカードを連携する", "en": "Link a transit IC card"},
    "card_number": {"ja": "カード番号(16〜17桁)", "en": "Card number (16 or 17 digits)"},
    "card_hint": {
        "ja": "カードの裏面に印字された番号です。空白やハイフンは入れても構いません。",
        "en": "Printed on the back of the card. Spaces or hyphens are fine.",
    },
    "add_card_button": {"ja": "カードを連携する", "en": "Link the card"},
    "add_member_title": {"ja": "保険証を連携する", "en": "Link an insurance membership"},
    "insurer_number": {"ja": "保険者番号(6桁または8桁)", "en": "Insurer number (6 or 8 digits)"},
    "member_number": {"ja": "記号・番号", "en": "Member number"},
    "member_hint": {
        "ja": "保険証に記載の記号と番号を続けて入力してください(例: 1234-567)。",
        "en": "The symbol and number on your insurance card, one after the other (1234-567).",
    },
    "add_member_button": {"ja": "保険証を連携する", "en": "Link the membership"},
    "link_added": {"ja": "連携しました。", "en": "Linked."},
    "link_removed": {"ja": "連携を解除しました。", "en": "Unlinked."},
    "link_invalid_card": {
        "ja": "カード番号は16桁または17桁の数字で入力してください。",
        "en": "A card number has 16 or 17 digits.",
    },
    "link_invalid_member": {
        "ja": (
            "保険者番号は6桁または8桁の数字、記号・番号は32文字以内の英数字とハイフンで"
            "入力してください。"
        ),
        "en": (
            "An insurer number has 6 or 8 digits; a member number up to 32 letters, digits "
            "or hyphens."
        ),
    },
    "link_taken": {
        "ja": "この番号は連携できません(すでに連携済みか、別のアカウントに連携されています)。",
        "en": "This number cannot be linked (it is linked already, here or to another account).",
    },
    "link_gone": {
        "ja": "その連携は見つかりません(すでに解除されています)。",
        "en": "That link was not found (it is unlinked already).",
    },
    # export
    "export_title": {"ja": "データの書き出し", "en": "Export my data"},
    "export_intro": {
        "ja": (
            "お預かりしているすべてのデータ(アカウント、連携、歩数、乗車、健診)を、"
            "JSONとCSVのZIPファイルにまとめます。作成はバックグラウンドで行い、"
            "できあがってから1日間ダウンロードできます。"
        ),
        "en": (
            "Everything the bank holds for you (account, links, steps, rides, checkups) in one "
            "ZIP of JSON and CSV files. It is built in the background and can be downloaded "
            "for a day once ready."
        ),
    },
    "export_button": {"ja": "書き出しを依頼する", "en": "Ask for an export"},
    "export_list": {"ja": "依頼した書き出し", "en": "Your exports"},
    "export_none": {"ja": "有効な書き出しはありません。", "en": "No export at the moment."},
    "export_requested_at": {"ja": "依頼日時", "en": "Asked for"},
    "export_status": {"ja": "状況", "en": "Status"},
    "export_pending": {"ja": "作成中です", "en": "Being built"},
    "export_ready": {"ja": "ダウンロードできます", "en": "Ready to download"},
    "export_failed": {"ja": "作成できませんでした", "en": "Could not be built"},
    "export_failed_note": {
        "ja": "書き出しの作成に失敗しました。お手数ですが、もう一度依頼してください。",
        "en": "Building this export failed. Please ask for a new one.",
    },
    "export_expires": {"ja": "{time}まで", "en": "until {time}"},
    "export_download": {"ja": "ZIPをダウンロード({size})", "en": "Download the ZIP ({size})"},
    "export_details": {"ja": "詳しく見る", "en": "Details"},
    "export_refresh": {"ja": "状況を更新する", "en": "Check again"},
    "export_pending_note": {
        "ja": (
            "作成には通常1分もかかりません。このページを開き直すか「状況を更新する」を押すと、"
            "最新の状況を表示します。"
        ),
        "en": (
            "It usually takes less than a minute. Reload this page or choose “Check again” "
            "to see where it is."
        ),
    },
    "export_limit": {
        "ja": "本日の書き出しの上限に達しました。日付が変わるとまた依頼できます。",
        "en": "You have asked for as many exports as a day allows. Ask again after midnight.",
    },
    "export_gone": {
        "ja": "その書き出しは見つかりません(期限切れか、存在しません)。",
        "en": "That export was not found (it expired, or never existed).",
    },
    "export_unreadable": {
        "ja": "この書き出しは開けません。お手数ですが、新しく依頼してください。",
        "en": "This export does not open. Please ask for a new one.",
    },
    "export_not_ready": {
        "ja": "まだ作成中です。しばらくしてからもう一度お試しください。",
        "en": "It is still being built. Try again in a moment.",
    },
    "back_to_exports": {"ja": "書き出しの一覧へ", "en": "Back to your exports"},
    # account
    "settings_title": {"ja": "アカウント設定", "en": "Account settings"},
    "password_title": {"ja": "パスワードの変更", "en": "Change your password"},
    "current_password": {"ja": "現在のパスワード", "en": "Current password"},
    "password_change_button": {"ja": "パスワードを変更する", "en": "Change password"},
    "password_changed": {
        "ja": "パスワードを変更しました。ほかの端末やアプリはサインアウトしました。",
        "en": "Your password has been changed. Your other devices and apps are signed out.",
    },
    "password_wrong": {
        "ja": "現在のパスワードが正しくありません。失敗が続くと一時的に操作できなくなります。",
        "en": "The current password is wrong. After repeated failures this pauses for a while.",
    },
    "signout_all_title": {"ja": "すべての端末からサインアウト", "en": "Sign out everywhere"},
    "signout_all_intro": {
        "ja": (
            "このブラウザを含むすべてのブラウザとアプリからサインアウトします。"
            "端末をなくしたときなどにお使いください。"
        ),
        "en": (
            "Signs you out of every browser and app, this one included: for example after "
            "losing a phone."
        ),
    },
    "signout_all_button": {"ja": "すべての端末からサインアウト", "en": "Sign out everywhere"},
    "signed_out_everywhere": {
        "ja": "すべての端末とアプリからサインアウトしました。",
        "en": "You are signed out on every device and app.",
    },
    "delete_title": {"ja": "アカウントの削除", "en": "Delete your account"},
    "delete_destroys": {"ja": "削除されるもの", "en": "What is destroyed"},
    "delete_destroys_items": {
        "ja": (
            "アカウント(メールアドレスとパスワード)|歩数・乗車・健診のすべての記録|"
            "カードと保険証の連携|作成済みの書き出し|すべての端末とアプリのサインイン|"
            "あなた専用の暗号鍵(バックアップに残った暗号文も、二度と復号できなくなります)"
        ),
        "en": (
            "Your account (email address and password)|Every record of steps, rides and "
            "checkups|Your card and insurance links|Any export you asked for|Every device's "
            "and app's sign-in|Your own encryption key (so copies left in backups can never be "
            "decrypted again)"
        ),
    },
    "delete_remains": {"ja": "残るもの", "en": "What remains"},
    "delete_remains_text": {
        "ja": (
            "削除証明だけが残ります: 受付番号、削除した日時、削除した記録の件数と、"
            "アカウントの内部番号(ほかの情報にはもうつながらない番号)です。"
            "メールアドレスや記録の中身は含みません。"
        ),
        "en": (
            "Only a receipt: its number, the time of the erasure, how many records were "
            "destroyed and your account's internal number (which no longer leads to anything). "
            "No address and no record's content."
        ),
    },
    "delete_warning": {
        "ja": "削除は取り消せません。必要なデータは先に書き出してください。",
        "en": "This cannot be undone. Export anything you want to keep first.",
    },
    "delete_password": {
        "ja": "確認のため、パスワードを入力してください",
        "en": "Enter your password to confirm",
    },
    "delete_button": {
        "ja": "アカウントとすべてのデータを削除する",
        "en": "Delete my account and all my data",
    },
    "deleted_title": {"ja": "アカウントを削除しました", "en": "Your account has been deleted"},
    "deleted_text": {
        "ja": "アカウントとすべての記録を削除し、暗号鍵を破棄しました。削除証明は次のとおりです。",
        "en": (
            "Your account and every record are deleted and your key is destroyed. Your receipt:"
        ),
    },
    "receipt_id": {"ja": "受付番号", "en": "Receipt number"},
    "receipt_time": {"ja": "削除日時", "en": "Erased at"},
    "receipt_records": {"ja": "削除した記録", "en": "Records destroyed"},
    "not_found_title": {"ja": "ページが見つかりません", "en": "Page not found"},
}

_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def translator(language: str) -> dict[str, str]:
    """The sign-in pages' words and these, in one language."""
    return {
        **identity_translator(language),
        **{key: texts[language] for key, texts in MESSAGES.items()},
    }


def format_day(day: date, language: str) -> str:
    if language == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_MONTHS_EN[day.month - 1][:3]} {day.year}"


def format_month(year: int, month: int, language: str) -> str:
    if language == "ja":
        return f"{year}年{month}月"
    return f"{_MONTHS_EN[month - 1]} {year}"


def short_month(month: int, language: str) -> str:
    return f"{month}月" if language == "ja" else _MONTHS_EN[month - 1][:3]


def format_time(moment: datetime, language: str) -> str:
    """A local (already converted) time with its date, to the minute."""
    return f"{format_day(moment.date(), language)} {moment:%H:%M}"


def format_number(value: int) -> str:
    return f"{value:,}"


def format_bytes(size: int, language: str) -> str:
    if size < 1024:
        return f"{size} B" if language == "en" else f"{size}バイト"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
