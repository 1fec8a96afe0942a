//! People and organisation: users, school authorities with their schools, classes (with
//! their teachers) and carts.
//!
//! Every page and form calls the API's own core (`api::users::create_user_as`,
//! `api::org::create_school_as`, `api::classes::set_teachers_as` …) with the session's
//! principal, so the console can do exactly what the API lets the same person do.

use actix_web::{http::StatusCode, web, HttpRequest, ResponseError};
use askama::Template;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use super::admin::{admin_only, here, nonempty, with_db, Choice};
use super::fields;
use super::i18n::{Tr, BERLIN};
use super::session::Viewer;
use super::{
    page_error, render, render_with, see_other, url_encode, Chrome, OrPage, PageResult, WebError,
};
use crate::accounts::{NewUser, Role, UserFilter, UserPatch};
use crate::api::auth::Caller;
use crate::api::authz::{self, Action, Place};
use crate::error::{ApiError, ErrorCode};
use crate::org::classes::{NewClass, NewGroup};
use crate::org::{NewSchool, NewTenant};
use crate::state::AppState;

/// Users per page of the list.
const PAGE: i64 = 50;

/// Every role, highest first (the order of the role select).
const ROLES: [Role; 4] = [
    Role::DistrictAdmin,
    Role::AuthorityAdmin,
    Role::SchoolAdmin,
    Role::Teacher,
];

/// Routes under `/admin`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/benutzer", web::get().to(users))
        .route("/benutzer", web::post().to(create_user))
        .route("/benutzer/neu", web::get().to(new_user))
        .route("/benutzer/{id}", web::get().to(user_page))
        .route("/benutzer/{id}", web::post().to(update_user))
        .route("/benutzer/{id}/deaktivieren", web::post().to(disable_user))
        .route("/schultraeger", web::get().to(authorities))
        .route("/schultraeger", web::post().to(create_authority))
        .route("/schultraeger/{id}", web::get().to(authority_page))
        .route("/schultraeger/{id}/schulen", web::post().to(create_school))
        .route("/schulen/{id}/klassen/neu", web::get().to(new_class))
        .route("/schulen/{id}/klassen", web::post().to(create_class))
        .route("/schulen/{id}/wagen/neu", web::get().to(new_cart))
        .route("/schulen/{id}/wagen", web::post().to(create_cart))
        .route("/klassen/{id}", web::get().to(class_page))
        .route("/klassen/{id}", web::post().to(set_teachers));
}

fn caller(v: &Viewer) -> Caller {
    Caller(v.p.clone())
}

/// A role in words ("Lehrkraft").
fn role_word(t: Tr, role: &str) -> String {
    match Role::parse(role) {
        Some(Role::DistrictAdmin) => t.t("role-district-admin"),
        Some(Role::AuthorityAdmin) => t.t("role-authority-admin"),
        Some(Role::SchoolAdmin) => t.t("role-school-admin"),
        Some(Role::Teacher) => t.t("role-teacher"),
        None => role.to_owned(),
    }
}

/// The school year `today` is in (August to July), e.g. `2026/27`.
pub fn school_year_of(today: NaiveDate) -> String {
    let start = if today.month() >= 8 {
        today.year()
    } else {
        today.year() - 1
    };
    format!("{start}/{:02}", (start + 1).rem_euclid(100))
}

/// Today's school year in Berlin.
fn current_school_year() -> String {
    school_year_of(chrono::Utc::now().with_timezone(&BERLIN).date_naive())
}

/// The value of `name` in a form that may repeat fields (checkboxes).
fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A teacher to tick.
pub struct TeacherBox {
    /// User id.
    pub id: String,
    /// Name and e-mail.
    pub label: String,
    /// Ticked.
    pub checked: bool,
}

/// The active teachers of a school, as the user list of `v` shows them.
async fn teachers_of_school(
    state: &AppState,
    v: &Viewer,
    school_id: &str,
    checked: &[String],
) -> Result<Vec<TeacherBox>, WebError> {
    let page = crate::api::users::users_as(
        state,
        &caller(v),
        UserFilter {
            school_id: Some(school_id.to_owned()),
            role: Some(Role::Teacher.as_str().to_owned()),
            limit: Some(500),
            ..Default::default()
        },
    )
    .await
    .or_page(v.tr)?;
    let mut list: Vec<TeacherBox> = page
        .items
        .into_iter()
        .filter(|u| u.user.disabled_at.is_none())
        .map(|u| TeacherBox {
            checked: checked.contains(&u.user.id),
            label: match &u.user.email {
                Some(e) => format!("{} ({e})", u.user.name),
                None => u.user.name.clone(),
            },
            id: u.user.id,
        })
        .collect();
    list.sort_by_key(|a| a.label.to_lowercase());
    Ok(list)
}

// ---------------------------------------------------------------------------------------
// Users

/// A user as a row of the list.
pub struct UserLine {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Role, in words.
    pub role: String,
    /// School or authority.
    pub place: String,
    /// Disabled.
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "people/users.html")]
struct UsersPage {
    t: Tr,
    chrome: Option<Chrome>,
    q: String,
    roles: Vec<Choice>,
    users: Vec<UserLine>,
    next: Option<String>,
    filtered: bool,
    may_create: bool,
}

/// The list's query (German names: they are in the address bar).
#[derive(Deserialize, Default)]
struct UserQuery {
    q: Option<String>,
    rolle: Option<String>,
    weiter: Option<String>,
}

/// `GET /admin/benutzer`: the users of the admin's scope, by role and text, paged.
async fn users(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    q: web::Query<UserQuery>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let q = q.into_inner();
    let text = nonempty(&q.q);
    if text.as_ref().is_some_and(|s| s.chars().count() > 100) {
        return Err(WebError::Api(
            t,
            ApiError::invalid_field("q", "at most 100 characters"),
        ));
    }
    let role = nonempty(&q.rolle);
    if role.as_deref().is_some_and(|r| Role::parse(r).is_none()) {
        return Err(WebError::Api(t, ApiError::invalid_field("rolle", "a role")));
    }
    let page = crate::api::users::users_as(
        &state,
        &caller(&v),
        UserFilter {
            role: role.clone(),
            q: text.clone(),
            limit: Some(PAGE),
            cursor: nonempty(&q.weiter),
            ..Default::default()
        },
    )
    .await
    .or_page(t)?;
    let next = page.next_cursor.map(|c| {
        format!(
            "/admin/benutzer?q={}&rolle={}&weiter={}",
            url_encode(text.as_deref().unwrap_or("")),
            url_encode(role.as_deref().unwrap_or("")),
            url_encode(&c)
        )
    });
    let users = page
        .items
        .into_iter()
        .map(|u| UserLine {
            place: u.school_name.or(u.tenant_name).unwrap_or_default(),
            role: role_word(t, &u.user.role),
            email: u.user.email.unwrap_or_default(),
            disabled: u.user.disabled_at.is_some(),
            name: u.user.name,
            id: u.user.id,
        })
        .collect();
    let roles = ROLES
        .iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: role_word(t, r.as_str()),
            selected: role.as_deref() == Some(r.as_str()),
        })
        .collect();
    render(&UsersPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/benutzer", &here(&req))),
        q: text.clone().unwrap_or_default(),
        roles,
        users,
        next,
        filtered: text.is_some() || role.is_some(),
        may_create: ROLES.iter().any(|r| authz::may_create_user(&v.p, *r)),
    })
}

#[derive(Template)]
#[template(path = "people/user_new.html")]
struct NewUserPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    name: String,
    email: String,
    roles: Vec<Choice>,
    schools: Vec<Choice>,
    authorities: Vec<Choice>,
    /// District admins belong nowhere: the "no place" choice.
    no_place: bool,
    error: Option<String>,
}

/// What the form showed, to show it again after a refusal (never the password).
#[derive(Default)]
struct UserDraft {
    name: String,
    email: String,
    role: String,
    place: String,
}

/// The new-user form: roles the caller may create, places in their scope.
async fn user_form(
    req: &HttpRequest,
    v: &Viewer,
    state: &AppState,
    status: StatusCode,
    draft: UserDraft,
    error: Option<String>,
) -> PageResult {
    let t = v.tr;
    let c = caller(v);
    let roles: Vec<Choice> = ROLES
        .iter()
        .filter(|r| authz::may_create_user(&v.p, **r))
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: role_word(t, r.as_str()),
            selected: draft.role == r.as_str(),
        })
        .collect();
    if roles.is_empty() {
        return Err(WebError::Api(
            t,
            ApiError::forbidden("you may not create users"),
        ));
    }
    let schools = crate::api::org::schools_as(state, &c, None)
        .await
        .or_page(t)?
        .into_iter()
        .filter(|s| {
            authz::require(
                &v.p,
                Action::ManageSchool,
                Place::school(&s.school.tenant_id, &s.school.id),
            )
            .is_ok()
        })
        .map(|s| {
            let value = format!("school:{}", s.school.id);
            Choice {
                selected: draft.place == value,
                label: match s.tenant_name {
                    Some(a) => format!("{} ({a})", s.school.name),
                    None => s.school.name,
                },
                value,
            }
        })
        .collect();
    let authorities = if authz::may_create_user(&v.p, Role::AuthorityAdmin) {
        crate::api::org::tenants_as(state, &c)
            .await
            .or_page(t)?
            .into_iter()
            .map(|a| {
                let value = format!("tenant:{}", a.id);
                Choice {
                    selected: draft.place == value,
                    label: a.name,
                    value,
                }
            })
            .collect()
    } else {
        vec![]
    };
    let page = NewUserPage {
        t,
        chrome: Some(Chrome::new(v, "/admin/benutzer", &here(req))),
        csrf: v.csrf.clone(),
        name: draft.name,
        email: draft.email,
        roles,
        schools,
        authorities,
        no_place: authz::may_create_user(&v.p, Role::DistrictAdmin),
        error,
    };
    Ok(render_with(status, &page))
}

/// `GET /admin/benutzer/neu`.
async fn new_user(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    user_form(
        &req,
        &v,
        &state,
        StatusCode::OK,
        UserDraft {
            role: Role::Teacher.as_str().to_owned(),
            ..Default::default()
        },
        None,
    )
    .await
}

#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    /// `school:<id>`, `tenant:<id>` or empty (district admins).
    #[serde(default)]
    place: String,
    #[serde(default)]
    password: String,
}

/// The refusal of a form in words: what went wrong, then the API's reason.
fn refusal(t: Tr, e: &ApiError) -> String {
    let what = match e.code {
        ErrorCode::Conflict => t.t("people-conflict"),
        ErrorCode::Forbidden => t.t("people-forbidden"),
        ErrorCode::NotFound => t.t("people-not-found"),
        _ => t.t("people-invalid"),
    };
    format!("{what} ({})", e.message)
}

/// `POST /admin/benutzer`: the API's user creation; a refusal shows the form again with
/// the reason (and the answer's status), without the password.
async fn create_user(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    form: web::Form<UserForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let draft = UserDraft {
        name: f.name.clone(),
        email: f.email.clone(),
        role: f.role.clone(),
        place: f.place.clone(),
    };
    let result = match Role::parse(&f.role) {
        None => Err(ApiError::invalid_field("role", "a role")),
        Some(role) => {
            let (school_id, tenant_id) = match f.place.split_once(':') {
                Some(("school", s)) => (Some(s.to_owned()), None),
                Some(("tenant", t)) => (None, Some(t.to_owned())),
                _ => (None, None),
            };
            let input = NewUser {
                name: f.name,
                email: f.email,
                role,
                tenant_id,
                school_id,
                password: Some(f.password).filter(|p| !p.is_empty()),
            };
            crate::api::users::create_user_as(&state, &caller(&v), input).await
        }
    };
    match result {
        Ok(u) => see_other(&format!("/admin/benutzer/{}", url_encode(&u.id))),
        Err(e) if e.code == ErrorCode::Internal => Err(page_error(v.tr, e)),
        Err(e) => {
            let error = refusal(v.tr, &e);
            user_form(&req, &v, &state, e.status_code(), draft, Some(error)).await
        }
    }
}

/// A class of a teacher, as a link.
pub struct ClassLink {
    /// Id.
    pub id: String,
    /// "7b (2026/27)".
    pub name: String,
}

#[derive(Template)]
#[template(path = "people/user.html")]
struct UserPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    id: String,
    name: String,
    email: String,
    role: String,
    place: String,
    disabled: Option<String>,
    is_teacher: bool,
    classes: Vec<ClassLink>,
    may_manage: bool,
    is_self: bool,
}

/// `GET /admin/benutzer/{id}`: the user, a teacher's classes, and (for those who may act
/// on them) forms to change and disable them.
async fn user_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let u = crate::api::users::user_as(&state, &caller(&v), path.into_inner())
        .await
        .or_page(t)?;
    let role = Role::parse(&u.user.role);
    let may_manage = role.is_some_and(|r| {
        authz::may_act_on_user(
            &v.p,
            &u.user.id,
            r,
            Place {
                tenant_id: u.user.tenant_id.as_deref(),
                school_id: u.user.school_id.as_deref(),
            },
            authz::UserAction::Manage,
        )
        .is_ok()
    });
    let is_teacher = role == Some(Role::Teacher);
    let classes = if is_teacher {
        let id = u.user.id.clone();
        with_db(&state, t, move |conn| {
            Ok(crate::org::classes::classes_of_teacher(conn, &id)?)
        })
        .await?
        .into_iter()
        .map(|c| ClassLink {
            name: format!("{} ({})", c.name, c.school_year),
            id: c.id,
        })
        .collect()
    } else {
        vec![]
    };
    render(&UserPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/benutzer", &here(&req))),
        csrf: v.csrf.clone(),
        is_self: u.user.id == v.p.user_id,
        role: role_word(t, &u.user.role),
        place: u.school_name.or(u.tenant_name).unwrap_or_default(),
        disabled: u.user.disabled_at.map(|d| t.datetime(d, BERLIN)),
        email: u.user.email.unwrap_or_default(),
        name: u.user.name,
        id: u.user.id,
        is_teacher,
        classes,
        may_manage,
    })
}

#[derive(Deserialize)]
struct UserEditForm {
    #[serde(default)]
    csrf: String,
    name: String,
    email: String,
}

/// `POST /admin/benutzer/{id}`: a new name or e-mail (the API's PATCH).
async fn update_user(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<UserEditForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let patch = UserPatch {
        name: Some(f.name),
        email: Some(f.email),
    };
    let u = crate::api::users::update_user_as(&state, &caller(&v), path.into_inner(), patch)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/benutzer/{}", url_encode(&u.id)))
}

#[derive(Deserialize)]
struct DisableForm {
    #[serde(default)]
    csrf: String,
    confirm: Option<String>,
}

/// `POST /admin/benutzer/{id}/deaktivieren`: disables the user (the API's DELETE; never
/// oneself) once the box is ticked.
async fn disable_user(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DisableForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    if form.confirm.is_none() {
        return Err(WebError::BadForm(v.tr, v.tr.t("user-disable-unconfirmed")));
    }
    let id = path.into_inner();
    crate::api::users::delete_user_as(&state, &caller(&v), id.clone())
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/benutzer/{}", url_encode(&id)))
}

// ---------------------------------------------------------------------------------------
// School authorities and their schools

/// An authority or school as a row.
pub struct OrgLine {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Slug (authorities) or time zone (schools).
    pub detail: String,
}

#[derive(Template)]
#[template(path = "people/authorities.html")]
struct AuthoritiesPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    authorities: Vec<OrgLine>,
    may_create: bool,
}

/// `GET /admin/schultraeger`: the authorities the admin sees; district admins create them.
async fn authorities(req: HttpRequest, v: Viewer, state: web::Data<AppState>) -> PageResult {
    admin_only(&v)?;
    let list = crate::api::org::tenants_as(&state, &caller(&v))
        .await
        .or_page(v.tr)?;
    render(&AuthoritiesPage {
        t: v.tr,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        csrf: v.csrf.clone(),
        authorities: list
            .into_iter()
            .map(|a| OrgLine {
                id: a.id,
                name: a.name,
                detail: a.slug,
            })
            .collect(),
        may_create: authz::require(&v.p, Action::ManageDistrict, Place::default()).is_ok(),
    })
}

#[derive(Deserialize)]
struct AuthorityForm {
    #[serde(default)]
    csrf: String,
    name: String,
    slug: String,
    push_topic: Option<String>,
}

/// `POST /admin/schultraeger`: a new authority (the API's rules: district admins).
async fn create_authority(
    v: Viewer,
    state: web::Data<AppState>,
    form: web::Form<AuthorityForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let input = NewTenant {
        name: f.name,
        slug: f.slug.trim().to_owned(),
        push_topic: nonempty(&f.push_topic),
    };
    let a = crate::api::org::create_tenant_as(&state, &caller(&v), input)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/schultraeger/{}", url_encode(&a.id)))
}

#[derive(Template)]
#[template(path = "people/authority.html")]
struct AuthorityPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    id: String,
    name: String,
    slug: String,
    schools: Vec<OrgLine>,
    may_manage: bool,
    /// The authority's own holidays and closed days from today on.
    closures: Vec<super::admin::Fact>,
    /// Where the holidays form posts.
    closures_action: String,
}

/// `GET /admin/schultraeger/{id}`: its schools, and a form for a new one.
async fn authority_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let c = caller(&v);
    let a = crate::api::org::load_tenant(&state, &c, path.into_inner(), Action::View)
        .await
        .or_page(t)?;
    let schools = crate::api::org::schools_as(&state, &c, Some(a.id.clone()))
        .await
        .or_page(t)?;
    let closures = super::admin::closure_facts(&state, t, a.id.clone(), None).await?;
    render(&AuthorityPage {
        closures,
        closures_action: format!("/admin/schultraeger/{}/ferien", a.id),
        t,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        csrf: v.csrf.clone(),
        may_manage: authz::require(&v.p, Action::ManageTenant, Place::tenant(&a.id)).is_ok(),
        schools: schools
            .into_iter()
            .map(|s| OrgLine {
                id: s.school.id,
                name: s.school.name,
                detail: s.school.timezone,
            })
            .collect(),
        id: a.id,
        name: a.name,
        slug: a.slug,
    })
}

#[derive(Deserialize)]
struct SchoolForm {
    #[serde(default)]
    csrf: String,
    name: String,
    timezone: Option<String>,
}

/// `POST /admin/schultraeger/{id}/schulen`: a new school of the authority.
async fn create_school(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<SchoolForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let input = NewSchool {
        name: f.name,
        timezone: nonempty(&f.timezone),
    };
    let s = crate::api::org::create_school_as(&state, &caller(&v), path.into_inner(), input)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/schulen/{}", url_encode(&s.id)))
}

// ---------------------------------------------------------------------------------------
// Classes and carts

#[derive(Template)]
#[template(path = "people/class_new.html")]
struct NewClassPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    school_id: String,
    school: String,
    year: String,
    teachers: Vec<TeacherBox>,
}

/// `GET /admin/schulen/{id}/klassen/neu`: name, school year (today's), teachers.
async fn new_class(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let s =
        crate::api::org::load_school(&state, &caller(&v), path.into_inner(), Action::ManageSchool)
            .await
            .or_page(t)?;
    let teachers = teachers_of_school(&state, &v, &s.id, &[]).await?;
    render(&NewClassPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        csrf: v.csrf.clone(),
        school_id: s.id,
        school: s.name,
        year: current_school_year(),
        teachers,
    })
}

/// `POST /admin/schulen/{id}/klassen`: the API's class creation, on to the class.
async fn create_class(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&field(&form, "csrf"))?;
    let input = NewClass {
        name: field(&form, "name"),
        school_year: field(&form, "school_year").trim().to_owned(),
        teacher_ids: fields(&form, "teacher"),
    };
    let c = crate::api::classes::create_class_as(&state, &caller(&v), path.into_inner(), input)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/klassen/{}", url_encode(&c.id)))
}

#[derive(Template)]
#[template(path = "people/cart_new.html")]
struct NewCartPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    school_id: String,
    school: String,
}

/// `GET /admin/schulen/{id}/wagen/neu`.
async fn new_cart(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let s =
        crate::api::org::load_school(&state, &caller(&v), path.into_inner(), Action::ManageSchool)
            .await
            .or_page(v.tr)?;
    render(&NewCartPage {
        t: v.tr,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        csrf: v.csrf.clone(),
        school_id: s.id,
        school: s.name,
    })
}

#[derive(Deserialize)]
struct CartForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

/// `POST /admin/schulen/{id}/wagen`: a new cart, back to the school.
async fn create_cart(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CartForm>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&form.csrf)?;
    let input = NewGroup {
        name: form.into_inner().name,
        kind: None,
    };
    let g = crate::api::classes::create_group_as(&state, &caller(&v), path.into_inner(), input)
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/schulen/{}", url_encode(&g.school_id)))
}

#[derive(Template)]
#[template(path = "people/class.html")]
struct ClassPage {
    t: Tr,
    chrome: Option<Chrome>,
    csrf: String,
    id: String,
    name: String,
    year: String,
    school_id: String,
    school: String,
    devices: i64,
    teachers: Vec<TeacherBox>,
    /// Teachers of the class by name (for those who only read).
    current: Vec<String>,
    may_manage: bool,
}

/// `GET /admin/klassen/{id}`: the class and its teachers to tick.
async fn class_page(
    req: HttpRequest,
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    admin_only(&v)?;
    let t = v.tr;
    let (c, s) = crate::api::classes::class(&state, &caller(&v), path.into_inner(), Action::View)
        .await
        .or_page(t)?;
    let may_manage = authz::require(
        &v.p,
        Action::ManageSchool,
        Place::school(&s.tenant_id, &s.id),
    )
    .is_ok();
    let detail = crate::api::classes::class_detail(&state, c)
        .await
        .or_page(t)?;
    let teachers = if may_manage {
        teachers_of_school(&state, &v, &s.id, &detail.teacher_ids).await?
    } else {
        vec![]
    };
    render(&ClassPage {
        t,
        chrome: Some(Chrome::new(&v, "/admin/schulen", &here(&req))),
        csrf: v.csrf.clone(),
        id: detail.class.id,
        name: detail.class.name,
        year: detail.class.school_year,
        school_id: s.id,
        school: s.name,
        devices: detail.devices,
        current: detail.teachers.into_iter().filter_map(|n| n.name).collect(),
        teachers,
        may_manage,
    })
}

/// `POST /admin/klassen/{id}`: the ticked teachers replace the class's (the API's PUT).
async fn set_teachers(
    v: Viewer,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    admin_only(&v)?;
    v.check_csrf(&field(&form, "csrf"))?;
    let id = path.into_inner();
    crate::api::classes::set_teachers_as(&state, &caller(&v), id.clone(), fields(&form, "teacher"))
        .await
        .or_page(v.tr)?;
    see_other(&format!("/admin/klassen/{}", url_encode(&id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_school_year_turns_in_august() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(school_year_of(d(2026, 8, 1)), "2026/27");
        assert_eq!(school_year_of(d(2027, 7, 31)), "2026/27");
        assert_eq!(school_year_of(d(2026, 7, 31)), "2025/26");
        assert_eq!(school_year_of(d(2099, 9, 1)), "2099/00");
    }
}
