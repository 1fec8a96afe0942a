# Das eigene Konto: Passwort wählen, Einmalpasswörter.

nav-password = Passwort ändern
password-title = Passwort ändern
password-forced-help = Sie haben sich mit einem Einmalpasswort angemeldet. Bitte wählen Sie jetzt Ihr eigenes Passwort; vorher ist nichts anderes möglich.
password-current = Aktuelles Passwort
password-new = Neues Passwort
password-repeat = Neues Passwort wiederholen
password-rules = 12 bis 128 Zeichen, nicht Ihre E-Mail-Adresse. Ein Satz aus mehreren Wörtern ist leicht zu merken und schwer zu erraten.
password-submit = Passwort speichern
password-sessions-end = Ihre anderen Anmeldungen (andere Browser, API-Schlüssel) enden dabei; diese bleibt bestehen.
password-changed = Ihr Passwort ist geändert. Ihre anderen Anmeldungen sind beendet.
password-continue = Weiter
password-mismatch = Die beiden neuen Passwörter stimmen nicht überein.
password-too-short = Das neue Passwort ist zu kurz: mindestens 12 Zeichen.
password-too-long = Das neue Passwort ist zu lang: höchstens 128 Zeichen.
password-is-email = Das neue Passwort darf nicht Ihre E-Mail-Adresse sein.
password-wrong-current = Das aktuelle Passwort ist falsch. Es wurde nichts geändert.
password-need-current = Bitte geben Sie Ihr aktuelles Passwort ein.
password-conflict = Ihr Passwort wurde gerade an anderer Stelle geändert. Bitte laden Sie die Seite neu.

user-must-change = wartet auf eigenes Passwort (Einmalpasswort ausgegeben)
user-reset = Passwort zurücksetzen
user-reset-help = Erzeugt ein Einmalpasswort, mit dem sich der Benutzer einmal anmeldet, um ein eigenes Passwort zu wählen (72 Stunden gültig). Alle Anmeldungen und API-Schlüssel des Benutzers enden sofort. So bekommen auch Lehrkräfte aus dem Klassenimport ihren ersten Zugang.
user-reset-confirm = Ja, ein Einmalpasswort ausgeben und alle Anmeldungen beenden
user-reset-unconfirmed = Bitte das Zurücksetzen mit dem Häkchen bestätigen.
user-reset-done-title = Einmalpasswort ausgegeben
user-reset-done-for = Für
user-reset-otp = Einmalpasswort
user-reset-valid-until = Gültig bis
user-reset-shown-once = Das Einmalpasswort wird nur jetzt angezeigt; gespeichert ist nur sein Hash. Geben Sie es dem Benutzer persönlich oder am Telefon weiter, nicht per E-Mail.
user-reset-next-steps = Der Benutzer meldet sich mit seiner E-Mail-Adresse und dem Einmalpasswort an und wählt dann sein eigenes Passwort. Läuft es ab, setzen Sie das Passwort einfach noch einmal zurück.
user-reset-back = Zurück zum Benutzer
