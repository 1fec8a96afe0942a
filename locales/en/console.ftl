# tafel console: English texts.

skip-to-content = Skip to content
nav-label = Main navigation
switch-language = Deutsch
logout = Log out
all = All
yes = yes
no = no
filter = Filter
filter-reset = Reset filters
next-page = Next page

role-district-admin = District admin
role-authority-admin = Authority admin
role-school-admin = School admin
role-teacher = Teacher

nav-overview = Overview
nav-devices = Devices
nav-schools = Schools
nav-requests = Requests
nav-assignments = Assignments
nav-audit = Audit log
nav-my-classes = My classes
nav-new-request = Request apps for a lesson

weekday-1 = Monday
weekday-2 = Tuesday
weekday-3 = Wednesday
weekday-4 = Thursday
weekday-5 = Friday
weekday-6 = Saturday
weekday-7 = Sunday

login-title = Log in
login-email = E-mail address
login-password = Password
login-submit = Log in
login-wrong = Wrong e-mail address or password.
login-wait = Too many failed attempts. Please try again in { $n } seconds.

error-not-found = Not found
error-forbidden = Not allowed
error-conflict = Conflict
error-too-many = Too many attempts
error-bad-request = Cannot do that
error-internal = Something went wrong
error-csrf = The form has expired. Please reload the page and send it again.
error-home = To the start page

overview-title = Overview
overview-devices = devices
overview-online = reported in the last 24 hours
overview-unseen-7 = not seen for 7 days
overview-unseen-30 = not seen for 30 days
overview-failing = devices with errors (7 days)
overview-requests = open requests
overview-shortages = Missing licences (next 14 days)
overview-no-shortages = The licences suffice for the next 14 days.
overview-expiring = Certificates and tokens expiring soon
overview-nothing-expiring = Nothing expires in the next 60 days.
shortage-line = { $app }: { $needed } licences missing, { $available } free – from { $when }
expiring-push = Push certificate of { $name }
expiring-vpp = Apps and Books token { $name }
expiring-ade = Apple School Manager token { $name }
expiring-tafel-cert = tafel certificate { $name }

col-what = What
col-ends = Ends
col-days-left = Days
col-name = Name
col-serial = Serial number
col-model = Model
col-os = iPadOS
col-school = School
col-authority = Authority
col-groups = Classes and carts
col-last-seen = Last seen
col-status = Status
col-item = App or profile
col-state = State
col-note = Note
col-command = Command
col-queued = Queued
col-answered = Answered
col-teacher = Teacher
col-apps = Apps
col-target = For
col-when = When
col-period = Period

devices-title = Devices
devices-search = Name or serial number
devices-school = School
devices-class = Class
devices-status = Status
devices-status-current = current (not retired)
devices-none = No devices found.
devices-more = (more on the next page)
devices-count = { $n ->
    [one] 1 device
   *[other] { $n } devices
}

status-pending = enrolled, not set up yet
status-authenticated = setting up
status-active = managed
status-inactive = unenrolled
status-erased = erased
status-retired = retired

device-facts = Device
device-serial = Serial number
device-udid = UDID
device-model = Model
device-os = iPadOS
device-school = School
device-groups = Classes and carts
device-status = Status
device-enrolled = Enrolled
device-last-seen = Last seen
device-inventory = State
device-no-inventory = The iPad has not reported its state yet.
inv-battery = Battery
inv-storage = Storage
inv-storage-free = { $free } GB of { $total } GB free
inv-supervised = Supervised
inv-passcode = Passcode set
inv-wifi-mac = Wi-Fi address
inv-reported = Reported
device-wanted = Wanted and actual
device-nothing-wanted = Nothing is assigned to this iPad.
device-apps = Apps on the iPad
device-profiles = Profiles on the iPad
device-none-reported = Nothing reported yet.
device-commands = Commands
device-no-commands = No commands yet.

item-installed = installed
item-pending-install = being sent
item-installing = downloading
item-pending-removal = being removed
item-scheduled = scheduled
item-failed = failed
item-not-installed = not installed
item-no-licence = no licence

queue-pending = waiting
queue-sent = sent
queue-not-now = later (iPad busy)
queue-acknowledged = done
queue-error = error
queue-command-format-error = refused by the iPad
queue-cancelled = cancelled
queue-expired = expired

schools-title = Schools
schools-none = No schools.
school-devices = Devices of this school
school-classes = Classes
school-carts = Device carts
school-no-classes = No classes yet.
school-no-carts = No device carts yet.
school-links = Enrollment links
school-links-help = Open the QR code with the iPad's camera: the iPad loads the profile and enrolls.
school-print = To print (one page per link)
school-no-links = No enrollment links yet.
link-target = Devices go into
link-description = Description (optional)
link-create = Create link
link-for-school = the school
link-for-class = Class { $name }
link-for-cart = Device cart { $name }
link-uses = Enrolled devices
qr-label = QR code: { $title }
print-title = Enrollment links
print-help = Each link is on its own A4 page. Print with Ctrl+P.
print-step-1 = Switch the iPad on and join the school's Wi-Fi.
print-step-2 = Open the camera and scan the QR code.
print-step-3 = Install the profile in Settings.

requests-title = Open requests
requests-none = No open requests.
request-approve = Approve
request-reject = Reject
request-reason = Reason for rejecting
request-withdraw = Withdraw request
request-pending = waiting for approval
request-approved = approved
request-rejected = rejected
request-cancelled = withdrawn
request-no-licence = { $app }: no licence for { $n } of { $m } iPads

assignments-title = Assignments
assignments-for-school = School
assignments-new = New assignment
assignments-none = No assignments yet.
assign-item = App or profile
assign-target = For class or device cart
assign-when = When
assign-in-periods = in these periods (timetable)
assign-no-periods = This school has no period times yet.
assign-timetable = Periods in which the app should be there
assign-save = Assign
schedule-always = always
schedule-windows = at certain times
kind-app = app
kind-profile = profile
target-class = Class { $name }
target-cart = Device cart { $name }

classes-title = My classes
classes-none = No classes are assigned to you yet.
classes-my-requests = My requests
classes-no-requests = No requests yet.

new-title = Request apps for a lesson
new-target = Class or device cart
new-date = Day
new-start = Start
new-end = End
new-periods = Periods
new-apps = Apps
new-no-apps = No apps are released for this school.
new-approved = no approval needed
new-keep = Keep the apps on the iPads after the lesson
new-note = Note to the school admins (optional)
new-submit = Send request

ready-title = Ready for the lesson?
ready-summary = { $ready } of { $devices } ready
ready-installing = { $n } still downloading
ready-pending = { $n } waiting
ready-failed = { $n ->
    [one] 1 with an error
   *[other] { $n } with errors
}
ready-no-licence = { $n } without licence
ready-refresh = Reload
state-ready = ready
state-installing = downloading
state-pending = waiting
state-failed = error
state-no-licence = no licence
state-offline-since = unreachable since { $when }

audit-title = Audit log
audit-action = Action (e.g. create, update, approve)
audit-object-type = Kind (e.g. device, assignment)
audit-none = No entries.
audit-who = Who
audit-what = What
audit-object = Object
audit-where = Where
audit-details = Details
nav-catalog = Catalog
nav-users = Users
nav-apple = Apple services
apple-title = Apple services
apple-show = Show
apple-push = Push certificate
apple-topic = Topic
apple-days-left = { $n ->
    [one] 1 day left
   *[other] { $n } days left
}
apple-no-push = This authority has no push certificate yet: without it no iPad can enroll.
apple-push-upload = Upload or renew the push certificate
apple-cert-pem = Certificate from Apple's Push Certificates Portal (PEM)
apple-key-pem = Private key (PEM, unencrypted)
apple-force = Replace another topic (enrolled iPads must enroll again)
apple-save = Save
apple-content = Apps and Books (content tokens)
apple-no-content = No content token yet.
apple-content-upload = Upload a content token
apple-token-file = Content of the token file from Apple School Manager
apple-location = Location
apple-licences = Licences
apple-no-licences = No licences.
apple-blocked = { $n ->
    [one] 1 iPad waits for a licence.
   *[other] { $n } iPads wait for a licence.
}
apple-owned = owned
apple-assigned = assigned
apple-available = free
apple-needed = needed
apple-missing = missing
col-app = App
content-active = active
content-taken-over = taken over by another server
content-failed = error
actions-title = Actions
action-sure = Yes, really
action-confirm-missing = Please tick "Yes, really".
action-inventory = Ask for its state
action-inventory-help = The iPad reports battery, storage, iPadOS and apps again.
action-restart = Restart
action-restart-help = The iPad restarts (supervised iPads only).
action-lock = Lock
action-lock-help = The iPad locks at once; unlock it with its passcode.
action-clear-passcode = Clear passcode
action-clear-passcode-help = Clears the iPad's forgotten passcode (with the unlock token it sent when it enrolled).
action-retire = Retire
action-retire-help = tafel no longer manages the iPad; it leaves its classes and carts and may enroll again.
action-erase = Erase
action-erase-help = Resets the iPad to factory settings. Everything on the iPad is lost.
action-erase-confirm = Type the serial number to confirm
action-sent-inventory = Request sent: the iPad answers once it is reachable.
action-sent-restart = Restart sent.
action-sent-lock = Lock sent.
action-sent-clear-passcode = Passcode clearing sent.
action-sent-erase = Erase sent.
action-sent-retire = The iPad is retired.
action-shut-down = Shut down
action-shut-down-help = The iPad shuts down (supervised iPads only, iPadOS 10.3 or later).
action-lost-mode-on = Lost Mode on
action-lost-mode-on-help = The iPad locks and shows the message or phone number (one of them is needed); only then can it be located (supervised iPads only).
action-lost-message = Message on the Lock screen
action-lost-phone = Phone number
action-lost-footnote = Footnote (instead of "Slide to Unlock")
action-lost-mode-off = Lost Mode off
action-lost-mode-off-help = The iPad, found, can be used again.
action-locate = Locate
action-locate-help = The iPad in Lost Mode reports where it is; see its answer in the commands below.
action-play-sound = Play sound
action-play-sound-help = The iPad in Lost Mode plays a sound until someone turns it off.
action-sent-shut-down = Shut down sent.
action-sent-lost-mode-on = Lost Mode sent.
action-sent-lost-mode-off = Lost Mode off sent.
action-sent-locate = Location request sent: its answer shows among the commands once the iPad replies.
action-sent-play-sound = Sound sent.
closures-title = Holidays and closed days
closures-none = No holidays or closed days entered.
closures-upload = Enter holidays
closures-calendar = Calendar
closures-help = One line per period: name,first day,last day (e.g. Christmas holidays,2026-12-21,2027-01-02) – or paste an iCalendar file's (.ics) text. During holidays, apps on a timetable are not installed.
closures-replace = Replace the school's days entered so far
closures-save = Save
asm-title = Apple School Manager
asm-none = No server token for automated enrollment yet.
asm-unnamed = Server token
asm-waiting = waiting for the server token from Apple School Manager
asm-upload = Upload or renew the server token
asm-server-token = Content of the .p7m file from Apple School Manager
asm-rules = Placing new iPads in schools
asm-no-rules = No placement rules: new iPads wait until an admin places them in a school.
asm-matches = Which iPads
asm-download-cert = Download the certificate for Apple School Manager (tafel-asm.pem)
asm-new = Create a new server token
asm-new-hint = tafel makes a key pair. Then download the certificate, add a server in Apple School Manager under “Preferences → MDM Servers”, upload the certificate there and paste the server token (.p7m) here.
asm-rule-actions = Action
asm-rule-delete = Delete rule
asm-rule-new = New placement rule
asm-rule-description = Description (optional)
asm-rule-order-number = Order number
asm-rule-serial-list = or serial numbers
asm-rule-hint = Either an order number or serial numbers (one per line or separated by commas). iPads already waiting are placed at once.
asm-rule-add = Add rule
asm-rule-order = Order number { $order }
asm-rule-serials = { $n ->
    [one] 1 serial number
   *[other] { $n } serial numbers
}

## Setup (Apple School Manager, Setup Assistant)
setup-title = Setting up new iPads
setup-back = Back to the school
setup-intro = How an iPad of this school that Apple School Manager gives to tafel sets itself up. Changes apply to iPads set up afterwards.
setup-defaults = Nothing stored yet: the defaults apply.
setup-profile-name = Profile name in Apple School Manager
setup-profile-name-hint = Leave empty for “school name (tafel)”.
setup-department = Department (shown during setup)
setup-phone = Support phone number
setup-email = Support e-mail address
setup-release = Release at the latest after (minutes)
setup-release-hint = How long a new iPad waits in Setup Assistant for its apps and settings (1 to 1440).
setup-authority = Set by the school authority
setup-await = Setup Assistant waits until apps and settings have arrived
setup-removable = Management may be removed on the iPad
setup-shared = Shared iPad (several users)
setup-authority-only = These are set by the school authority.
setup-skip = Skip Setup Assistant panes
setup-skip-hint = Ticked panes are never shown; the others appear during setup (Apple's names).
setup-save = Save
setup-saved = Saved. Apple School Manager receives the profile at the next sync.
