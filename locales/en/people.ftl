# People and organisation pages (users, authorities, schools, classes, carts).

people-save = Save
people-conflict = Not possible: the e-mail address or name is taken.
people-forbidden = Not allowed for this role or place.
people-not-found = The school or school authority is not known.
people-invalid = Please check the entries.

users-title = Users
users-new = Create a user
users-search = Name or e-mail
users-role = Role
users-email = E-mail
users-place = School or authority
users-none = No users.
users-count = { $n ->
    [one] 1 user
   *[other] { $n } users
}
users-more = (more on the next page)
user-active = active
user-disabled = disabled

user-new-title = Create a user
user-place = School or authority
user-place-none = none (district admin)
user-place-help = Teachers and school admins belong to a school, authority admins to a school authority, district admins to none.
user-password = First password (optional)
user-password-help = At least 12 characters. Without a password the user works with API tokens only.
user-create = Create

user-classes = Classes
user-no-classes = No classes.
user-edit = Change name and e-mail
user-disable = Disable
user-disable-help = Disabled users cannot log in and their tokens stop working. The audit log and requests keep naming them.
user-disable-confirm = Yes, disable this user
user-disable-unconfirmed = Please tick the box to confirm.

authorities-title = School authorities
authorities-none = No school authorities.
authority-slug = Short name
authority-slug-help = Lowercase letters, digits and hyphens, e.g. city-north.
authority-push-topic = Push topic (optional)
authority-push-topic-help = Otherwise set by the push certificate once it is uploaded.
authority-new = Create a school authority
authority-create = Create

school-new = Create a school
school-timezone = Time zone
school-create = Create

class-title = Class
class-new-title = Create a class
class-year = School year
class-year-help = For example 2026/27.
class-teachers = Teachers
class-no-teachers-at-school = The school has no teachers yet.
class-no-teachers = No teachers.
class-create = Create
class-save-teachers = Save teachers

cart-new-title = Create a cart
cart-create = Create
