# One's own account: choosing a password, one-time passwords.

nav-password = Change password
password-title = Change password
password-forced-help = You logged in with a one-time password. Please choose your own password now; nothing else is possible before.
password-current = Current password
password-new = New password
password-repeat = Repeat the new password
password-rules = 12 to 128 characters, not your e-mail address. A sentence of several words is easy to remember and hard to guess.
password-submit = Save password
password-sessions-end = Your other logins (other browsers, API tokens) end; this one stays.
password-changed = Your password is changed. Your other logins have ended.
password-continue = Continue
password-mismatch = The two new passwords differ.
password-too-short = The new password is too short: at least 12 characters.
password-too-long = The new password is too long: at most 128 characters.
password-is-email = The new password must not be your e-mail address.
password-wrong-current = The current password is wrong. Nothing was changed.
password-need-current = Please enter your current password.
password-conflict = Your password was just changed elsewhere. Please reload the page.

user-must-change = waiting for their own password (one-time password issued)
user-reset = Reset password
user-reset-help = Issues a one-time password with which the user logs in once to choose their own (valid 72 hours). All logins and API tokens of the user end at once. This is also how teachers from the class import get their first access.
user-reset-confirm = Yes, issue a one-time password and end all logins
user-reset-unconfirmed = Please tick the box to confirm the reset.
user-reset-done-title = One-time password issued
user-reset-done-for = For
user-reset-otp = One-time password
user-reset-valid-until = Valid until
user-reset-shown-once = The one-time password is shown only now; only its hash is stored. Hand it to the user in person or on the phone, not by e-mail.
user-reset-next-steps = The user logs in with their e-mail address and the one-time password and then chooses their own password. If it expires, simply reset the password again.
user-reset-back = Back to the user
