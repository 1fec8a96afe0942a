# People and organisation pages (users, authorities, schools, classes, carts).

people-save = Speichern
people-conflict = Das geht so nicht: Die E-Mail-Adresse oder der Name ist schon vergeben.
people-forbidden = Keine Berechtigung für diese Rolle oder diesen Ort.
people-not-found = Die Schule oder der Schulträger ist nicht bekannt.
people-invalid = Bitte die Eingaben prüfen.

users-title = Benutzer
users-new = Benutzer anlegen
users-search = Name oder E-Mail
users-role = Rolle
users-email = E-Mail
users-place = Schule oder Schulträger
users-none = Keine Benutzer.
users-count = { $n ->
    [one] 1 Benutzer
   *[other] { $n } Benutzer
}
users-more = (weitere auf der nächsten Seite)
user-active = aktiv
user-disabled = deaktiviert

user-new-title = Benutzer anlegen
user-place = Schule oder Schulträger
user-place-none = keiner (Kreis-Admin)
user-place-help = Lehrkräfte und Schul-Admins gehören zu einer Schule, Schulträger-Admins zu einem Schulträger, Kreis-Admins zu keinem.
user-password = Erstes Passwort (optional)
user-password-help = Mindestens 12 Zeichen. Ohne Passwort arbeitet der Benutzer nur mit API-Schlüsseln.
user-create = Anlegen

user-classes = Klassen
user-no-classes = Keine Klassen.
user-edit = Name und E-Mail ändern
user-disable = Deaktivieren
user-disable-help = Deaktivierte Benutzer können sich nicht mehr anmelden, ihre Schlüssel gelten nicht mehr. Protokoll und Anträge nennen sie weiter.
user-disable-confirm = Ja, diesen Benutzer deaktivieren
user-disable-unconfirmed = Bitte das Deaktivieren mit dem Häkchen bestätigen.

authorities-title = Schulträger
authorities-none = Keine Schulträger.
authority-slug = Kurzname
authority-slug-help = Kleinbuchstaben, Ziffern und Bindestriche, z. B. stadt-norderstedt.
authority-push-topic = Push-Topic (optional)
authority-push-topic-help = Setzt sonst das Push-Zertifikat, sobald es hochgeladen ist.
authority-new = Schulträger anlegen
authority-create = Anlegen

school-new = Schule anlegen
school-timezone = Zeitzone
school-create = Anlegen

class-title = Klasse
class-new-title = Klasse anlegen
class-year = Schuljahr
class-year-help = Zum Beispiel 2026/27.
class-teachers = Lehrkräfte
class-no-teachers-at-school = Die Schule hat noch keine Lehrkräfte.
class-no-teachers = Keine Lehrkräfte.
class-create = Anlegen
class-save-teachers = Lehrkräfte speichern

cart-new-title = Geräte-Wagen anlegen
cart-create = Anlegen
