# tafel-Konsole: deutsche Texte (die Voreinstellung).

skip-to-content = Zum Inhalt springen
nav-label = Hauptnavigation
switch-language = English
logout = Abmelden
all = Alle
yes = ja
no = nein
filter = Filtern
filter-reset = Filter zurücksetzen
next-page = Nächste Seite

role-district-admin = Kreis-Admin
role-authority-admin = Schulträger-Admin
role-school-admin = Schul-Admin
role-teacher = Lehrkraft

nav-overview = Übersicht
nav-devices = Geräte
nav-schools = Schulen
nav-requests = Anträge
nav-assignments = Zuweisungen
nav-audit = Protokoll
nav-my-classes = Meine Klassen
nav-new-request = Apps für eine Stunde anfragen

weekday-1 = Montag
weekday-2 = Dienstag
weekday-3 = Mittwoch
weekday-4 = Donnerstag
weekday-5 = Freitag
weekday-6 = Samstag
weekday-7 = Sonntag

login-title = Anmelden
login-email = E-Mail-Adresse
login-password = Passwort
login-submit = Anmelden
login-wrong = E-Mail-Adresse oder Passwort ist falsch.
login-wait = Zu viele Fehlversuche. Bitte in { $n } Sekunden erneut versuchen.

error-not-found = Nicht gefunden
error-forbidden = Keine Berechtigung
error-conflict = Konflikt
error-too-many = Zu viele Versuche
error-bad-request = Eingabe nicht möglich
error-internal = Ein Fehler ist aufgetreten
error-csrf = Das Formular ist abgelaufen. Bitte die Seite neu laden und erneut senden.
error-home = Zur Startseite

overview-title = Übersicht
overview-devices = Geräte
overview-online = in den letzten 24 Stunden gemeldet
overview-unseen-7 = seit 7 Tagen nicht gemeldet
overview-unseen-30 = seit 30 Tagen nicht gemeldet
overview-failing = Geräte mit Fehlern (7 Tage)
overview-requests = offene Anträge
overview-shortages = Fehlende Lizenzen (nächste 14 Tage)
overview-no-shortages = Für die nächsten 14 Tage reichen die Lizenzen.
overview-expiring = Zertifikate und Token, die bald ablaufen
overview-nothing-expiring = In den nächsten 60 Tagen läuft nichts ab.
shortage-line = { $app }: { $needed } Lizenzen fehlen, { $available } frei – ab { $when }
expiring-push = Push-Zertifikat von { $name }
expiring-vpp = Apps-und-Bücher-Token { $name }
expiring-ade = Apple-School-Manager-Token { $name }
expiring-tafel-cert = tafel-Zertifikat { $name }

col-what = Was
col-ends = Endet
col-days-left = Tage
col-name = Name
col-serial = Seriennummer
col-model = Modell
col-os = iPadOS
col-school = Schule
col-authority = Schulträger
col-groups = Klassen und Wagen
col-last-seen = Zuletzt gemeldet
col-status = Status
col-item = App oder Profil
col-state = Stand
col-note = Hinweis
col-command = Befehl
col-queued = Eingereiht
col-answered = Beantwortet
col-teacher = Lehrkraft
col-apps = Apps
col-target = Für
col-when = Wann
col-period = Stunde

devices-title = Geräte
devices-search = Name oder Seriennummer
devices-school = Schule
devices-class = Klasse
devices-status = Status
devices-status-current = aktuelle (ohne ausgemusterte)
devices-none = Keine Geräte gefunden.
devices-more = (weitere auf der nächsten Seite)
devices-count = { $n ->
    [one] 1 Gerät
   *[other] { $n } Geräte
}

status-pending = angemeldet, noch nicht eingerichtet
status-authenticated = in Einrichtung
status-active = verwaltet
status-inactive = abgemeldet
status-erased = gelöscht
status-retired = ausgemustert

device-facts = Gerät
device-serial = Seriennummer
device-udid = UDID
device-model = Modell
device-os = iPadOS
device-school = Schule
device-groups = Klassen und Wagen
device-status = Status
device-enrolled = Eingeschrieben
device-last-seen = Zuletzt gemeldet
device-inventory = Zustand
device-no-inventory = Das iPad hat noch keinen Zustand gemeldet.
inv-battery = Akku
inv-storage = Speicher
inv-storage-free = { $free } GB von { $total } GB frei
inv-supervised = Betreut (supervised)
inv-passcode = Code gesetzt
inv-wifi-mac = WLAN-Adresse
inv-reported = Gemeldet
device-wanted = Soll und Ist
device-nothing-wanted = Diesem iPad ist nichts zugewiesen.
device-apps = Apps auf dem iPad
device-profiles = Profile auf dem iPad
device-none-reported = Noch nichts gemeldet.
device-commands = Befehle
device-no-commands = Noch keine Befehle.

item-installed = installiert
item-pending-install = wird gesendet
item-installing = lädt
item-pending-removal = wird entfernt
item-scheduled = geplant
item-failed = fehlgeschlagen
item-not-installed = nicht installiert
item-no-licence = keine Lizenz

queue-pending = wartet
queue-sent = gesendet
queue-not-now = später (iPad beschäftigt)
queue-acknowledged = erledigt
queue-error = Fehler
queue-command-format-error = vom iPad abgelehnt
queue-cancelled = abgebrochen
queue-expired = abgelaufen

schools-title = Schulen
schools-none = Keine Schulen.
school-devices = Geräte dieser Schule
school-classes = Klassen
school-carts = Geräte-Wagen
school-no-classes = Noch keine Klassen.
school-no-carts = Noch keine Geräte-Wagen.
school-links = Einschreibe-Links
school-links-help = Auf dem iPad den QR-Code mit der Kamera öffnen: das iPad lädt das Profil und wird eingeschrieben.
school-print = Zum Ausdrucken (eine Seite je Link)
school-no-links = Noch keine Einschreibe-Links.
link-target = Geräte kommen in
link-description = Beschreibung (freiwillig)
link-create = Link erstellen
link-for-school = die Schule
link-for-class = Klasse { $name }
link-for-cart = Geräte-Wagen { $name }
link-uses = Eingeschriebene Geräte
qr-label = QR-Code: { $title }
print-title = Einschreibe-Links
print-help = Jeder Link steht auf einer eigenen A4-Seite. Drucken mit Strg+P.
print-step-1 = iPad einschalten und mit dem WLAN der Schule verbinden.
print-step-2 = Die Kamera öffnen und den QR-Code scannen.
print-step-3 = Das Profil in den Einstellungen installieren.

requests-title = Offene Anträge
requests-none = Keine offenen Anträge.
request-approve = Genehmigen
request-reject = Ablehnen
request-reason = Grund der Ablehnung
request-withdraw = Antrag zurückziehen
request-pending = wartet auf Genehmigung
request-approved = genehmigt
request-rejected = abgelehnt
request-cancelled = zurückgezogen
request-no-licence = { $app }: für { $n } von { $m } iPads keine Lizenz

assignments-title = Zuweisungen
assignments-for-school = Schule
assignments-new = Neue Zuweisung
assignments-none = Noch keine Zuweisungen.
assign-item = App oder Profil
assign-target = Für Klasse oder Geräte-Wagen
assign-when = Wann
assign-in-periods = in diesen Stunden (Stundenplan)
assign-no-periods = Diese Schule hat noch keine Stundenzeiten.
assign-timetable = Stunden, in denen die App da sein soll
assign-save = Zuweisen
schedule-always = immer
schedule-windows = zu bestimmten Zeiten
kind-app = App
kind-profile = Profil
target-class = Klasse { $name }
target-cart = Geräte-Wagen { $name }

classes-title = Meine Klassen
classes-none = Ihnen sind noch keine Klassen zugeordnet.
classes-my-requests = Meine Anfragen
classes-no-requests = Noch keine Anfragen.

new-title = Apps für eine Stunde anfragen
new-target = Klasse oder Geräte-Wagen
new-date = Tag
new-start = Beginn
new-end = Ende
new-periods = Stunden
new-apps = Apps
new-no-apps = Für diese Schule sind keine Apps freigegeben.
new-approved = ohne Genehmigung
new-keep = Apps nach der Stunde auf den iPads lassen
new-note = Hinweis an die Schul-Admins (freiwillig)
new-submit = Anfragen

ready-title = Bereit für die Stunde?
ready-summary = { $ready } von { $devices } bereit
ready-installing = { $n ->
    [one] 1 lädt noch
   *[other] { $n } laden noch
}
ready-pending = { $n ->
    [one] 1 wartet
   *[other] { $n } warten
}
ready-failed = { $n ->
    [one] 1 mit Fehler
   *[other] { $n } mit Fehler
}
ready-no-licence = { $n } ohne Lizenz
ready-refresh = Neu laden
state-ready = bereit
state-installing = lädt
state-pending = wartet
state-failed = Fehler
state-no-licence = keine Lizenz
state-offline-since = nicht erreichbar seit { $when }

audit-title = Protokoll
audit-action = Aktion (z. B. create, update, approve)
audit-object-type = Art (z. B. device, assignment)
audit-none = Keine Einträge.
audit-who = Wer
audit-what = Was
audit-object = Objekt
audit-where = Wo
audit-details = Einzelheiten
nav-catalog = Katalog
nav-users = Benutzer
nav-apple = Apple-Dienste
apple-title = Apple-Dienste
apple-show = Anzeigen
apple-push = Push-Zertifikat
apple-topic = Thema (Topic)
apple-days-left = { $n ->
    [one] noch 1 Tag
   *[other] noch { $n } Tage
}
apple-no-push = Dieser Schulträger hat noch kein Push-Zertifikat: ohne es kann sich kein iPad einschreiben.
apple-push-upload = Push-Zertifikat hochladen oder erneuern
apple-cert-pem = Zertifikat aus dem Apple Push Certificates Portal (PEM)
apple-key-pem = Privater Schlüssel (PEM, unverschlüsselt)
apple-force = Anderes Thema ersetzen (eingeschriebene iPads müssen sich neu einschreiben)
apple-save = Speichern
apple-request = Zertifikatsanforderung
apple-request-none = Für ein neues oder erneuertes Push-Zertifikat erstellt tafel den Schlüssel und die Zertifikatsanforderung (CSR); der Schlüssel bleibt verschlüsselt in tafel.
apple-request-pending = Eine Zertifikatsanforderung vom { $made } wartet auf Apples Zertifikat.
apple-request-subject = Antragsteller
apple-request-download = Anforderung herunterladen (.csr)
apple-request-create = Zertifikatsanforderung erstellen
apple-request-again = Neue Zertifikatsanforderung erstellen (ersetzt die wartende)
apple-request-step-1 = Zertifikatsanforderung erstellen und als .csr-Datei herunterladen.
apple-request-step-2 = Die Anforderung von einem MDM-Anbieter mit Apples „MDM CSR“-Zertifikat signieren lassen (z. B. vom Landesmedienzentrum oder über mdmcert.download).
apple-request-step-3 = Die signierte Anforderung unter identity.apple.com/pushcert mit der verwalteten Apple-ID des Schulträgers hochladen; zum Erneuern dieselbe Apple-ID und „Renew“ beim bisherigen Zertifikat wählen.
apple-request-step-4 = Das von Apple ausgestellte Zertifikat (.pem) hier hochladen – ohne Schlüssel.
apple-key-from-request = Den Schlüssel hat tafel: er gehört zur wartenden Zertifikatsanforderung. Nur das Zertifikat einfügen.
apple-content = Apps und Bücher (Inhalts-Token)
apple-no-content = Noch kein Inhalts-Token.
apple-content-upload = Inhalts-Token hochladen
apple-token-file = Inhalt der Token-Datei aus Apple School Manager
apple-location = Standort
apple-licences = Lizenzen
apple-no-licences = Keine Lizenzen.
apple-blocked = { $n ->
    [one] 1 iPad wartet auf eine Lizenz.
   *[other] { $n } iPads warten auf eine Lizenz.
}
apple-owned = gekauft
apple-assigned = vergeben
apple-available = frei
apple-needed = benötigt
apple-missing = fehlen
col-app = App
content-active = aktiv
content-taken-over = von einem anderen Server übernommen
content-failed = Fehler
actions-title = Aktionen
action-sure = Ja, wirklich
action-confirm-missing = Bitte das Kästchen „Ja, wirklich“ ankreuzen.
action-inventory = Zustand abfragen
action-inventory-help = Das iPad meldet Akku, Speicher, iPadOS und Apps neu.
action-restart = Neu starten
action-restart-help = Das iPad startet neu (nur betreute iPads).
action-lock = Sperren
action-lock-help = Das iPad wird sofort gesperrt; entsperren mit dem Code.
action-clear-passcode = Code entfernen
action-clear-passcode-help = Entfernt den vergessenen Code des iPads (mit dem beim Einschreiben gemeldeten Entsperr-Token).
action-retire = Ausmustern
action-retire-help = tafel verwaltet das iPad nicht mehr; es verlässt Klassen und Wagen und kann sich neu einschreiben.
action-erase = Löschen
action-erase-help = Setzt das iPad auf Werkseinstellungen zurück. Alle Daten auf dem iPad gehen verloren.
action-erase-confirm = Zur Bestätigung die Seriennummer eingeben
action-sent-inventory = Abfrage gesendet: das iPad meldet sich, sobald es erreichbar ist.
action-sent-restart = Neustart gesendet.
action-sent-lock = Sperre gesendet.
action-sent-clear-passcode = Code-Entfernung gesendet.
action-sent-erase = Löschen gesendet.
action-sent-retire = Das iPad ist ausgemustert.
action-shut-down = Ausschalten
action-shut-down-help = Das iPad schaltet sich aus (nur betreute iPads, iPadOS 10.3 oder neuer).
action-lost-mode-on = Verloren-Modus ein
action-lost-mode-on-help = Das iPad wird gesperrt und zeigt die Nachricht oder Telefonnummer (eine von beiden ist nötig); erst dann lässt es sich orten (nur betreute iPads).
action-lost-message = Nachricht auf dem Sperrbildschirm
action-lost-phone = Telefonnummer
action-lost-footnote = Fußzeile (statt „Entsperren“)
action-lost-mode-off = Verloren-Modus aus
action-lost-mode-off-help = Das gefundene iPad lässt sich wieder benutzen.
action-locate = Orten
action-locate-help = Das iPad im Verloren-Modus meldet seinen Standort; er steht unten bei den Befehlen.
action-play-sound = Ton abspielen
action-play-sound-help = Das iPad im Verloren-Modus spielt einen Ton, bis jemand ihn abschaltet.
action-sent-shut-down = Ausschalten gesendet.
action-sent-lost-mode-on = Verloren-Modus gesendet.
action-sent-lost-mode-off = Verloren-Modus aus gesendet.
action-sent-locate = Ortung gesendet: der Standort erscheint bei den Befehlen, sobald das iPad antwortet.
action-sent-play-sound = Ton gesendet.
closures-title = Ferien und freie Tage
closures-none = Keine Ferien oder freien Tage eingetragen.
closures-upload = Ferien eintragen
closures-calendar = Kalender
closures-help = Eine Zeile je Zeitraum: Name,Erster Tag,Letzter Tag (z. B. Weihnachtsferien,2026-12-21,2027-01-02) – oder den Text einer iCalendar-Datei (.ics) einfügen. In Ferien werden Apps nach Stundenplan nicht installiert.
closures-replace = Die bisher eingetragenen Tage der Schule ersetzen
closures-save = Eintragen
asm-title = Apple School Manager
asm-none = Noch kein Server-Token für die automatische Einschreibung.
asm-unnamed = Server-Token
asm-waiting = wartet auf das Server-Token aus Apple School Manager
asm-terms = Apple School Manager wartet auf die Zustimmung zu Apples neuen Nutzungsbedingungen: Melden Sie sich bei school.apple.com an und akzeptieren Sie sie. tafel versucht es bei jedem Abgleich erneut und macht danach von selbst weiter.
asm-failed = Apple hat dieses Server-Token abgelehnt: Laden Sie in Apple School Manager ein neues Token für diesen MDM-Server herunter und hier hoch.
asm-last-problem = Beim letzten Abgleich:
asm-upload = Server-Token hochladen oder erneuern
asm-server-token = Inhalt der .p7m-Datei aus Apple School Manager
asm-rules = Zuordnung neuer iPads zu Schulen
asm-no-rules = Keine Zuordnungsregeln: neue iPads warten, bis ein Admin sie einer Schule zuordnet.
asm-matches = Welche iPads
asm-download-cert = Zertifikat für Apple School Manager herunterladen (tafel-asm.pem)
asm-new = Neues Server-Token anlegen
asm-new-hint = tafel erzeugt ein Schlüsselpaar. Laden Sie danach das Zertifikat herunter, legen Sie in Apple School Manager unter „Einstellungen → MDM-Server“ einen Server an, laden Sie dort das Zertifikat hoch und fügen Sie das Server-Token (.p7m) hier ein.
asm-rule-actions = Aktion
asm-rule-delete = Regel löschen
asm-rule-new = Neue Zuordnungsregel
asm-rule-description = Beschreibung (optional)
asm-rule-order-number = Bestellnummer
asm-rule-serial-list = oder Seriennummern
asm-rule-hint = Entweder eine Bestellnummer oder Seriennummern (eine pro Zeile oder durch Komma getrennt). iPads, die schon warten, werden sofort zugeordnet.
asm-rule-add = Regel hinzufügen
asm-rule-order = Bestellnummer { $order }
asm-rule-serials = { $n ->
    [one] 1 Seriennummer
   *[other] { $n } Seriennummern
}

## Einrichtung (Apple School Manager, Setup-Assistent)
setup-title = Einrichtung neuer iPads
setup-back = Zurück zur Schule
setup-intro = So richtet sich ein iPad dieser Schule ein, das Apple School Manager an tafel gibt. Änderungen gelten für iPads, die danach eingerichtet werden.
setup-defaults = Noch nichts gespeichert: es gelten die Vorgaben.
setup-profile-name = Name des Profils in Apple School Manager
setup-profile-name-hint = Leer lassen für „Schulname (tafel)“.
setup-department = Abteilung (wird bei der Einrichtung gezeigt)
setup-phone = Telefonnummer des Supports
setup-email = E-Mail-Adresse des Supports
setup-release = Spätestens freigeben nach (Minuten)
setup-release-hint = So lange wartet ein neues iPad im Setup-Assistenten auf seine Apps und Einstellungen (1 bis 1440).
setup-authority = Festlegungen des Schulträgers
setup-await = Setup-Assistent wartet, bis Apps und Einstellungen da sind
setup-removable = Verwaltung darf auf dem iPad entfernt werden
setup-shared = Geteiltes iPad (mehrere Nutzer)
setup-authority-only = Diese Punkte legt der Schulträger fest.
setup-skip = Bildschirme des Setup-Assistenten überspringen
setup-skip-hint = Angekreuzte Bildschirme sieht niemand; die übrigen zeigt das iPad bei der Einrichtung (Apples Namen).
setup-save = Speichern
setup-saved = Gespeichert. Apple School Manager erhält das Profil bei der nächsten Synchronisation.
