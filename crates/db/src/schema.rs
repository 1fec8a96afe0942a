//! The diesel schema, one portable description for SQLite and PostgreSQL.
//!
//! Written by hand to match `migrations/sqlite` and `migrations/postgresql`; both
//! backends use the same column types (`Timestamp` is UTC, `Binary` is BLOB/BYTEA).

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        slug -> Text,
        push_topic -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        reenroll_requires_release -> Bool,
    }
}

diesel::table! {
    schools (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        timezone -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        email -> Nullable<Text>,
        role -> Text,
        tenant_id -> Nullable<Text>,
        school_id -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        password_must_change -> Bool,
        password_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        token_sha256 -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        udid -> Nullable<Text>,
        serial_number -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        school_id -> Nullable<Text>,
        name -> Nullable<Text>,
        model -> Nullable<Text>,
        model_name -> Nullable<Text>,
        product_name -> Nullable<Text>,
        os_version -> Nullable<Text>,
        build_version -> Nullable<Text>,
        imei -> Nullable<Text>,
        enrollment_status -> Text,
        topic -> Nullable<Text>,
        identity_cert_sha256 -> Nullable<Text>,
        identity_cert_not_after -> Nullable<Timestamp>,
        push_token -> Nullable<Text>,
        push_magic -> Nullable<Text>,
        unlock_token -> Nullable<Binary>,
        bootstrap_token -> Nullable<Binary>,
        awaiting_configuration -> Bool,
        enrolled_at -> Nullable<Timestamp>,
        unenrolled_at -> Nullable<Timestamp>,
        last_seen_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        push_invalid_at -> Nullable<Timestamp>,
        last_push_at -> Nullable<Timestamp>,
        last_push_result -> Nullable<Text>,
        push_failures -> Integer,
        next_push_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    device_inventory (device_id) {
        device_id -> Text,
        battery_level -> Nullable<Double>,
        capacity_gb -> Nullable<Double>,
        available_gb -> Nullable<Double>,
        supervised -> Nullable<Bool>,
        wifi_mac -> Nullable<Text>,
        passcode_present -> Nullable<Bool>,
        details -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    device_certificates (sha256) {
        sha256 -> Text,
        serial -> Text,
        subject -> Text,
        not_before -> Timestamp,
        not_after -> Timestamp,
        renewed_from -> Nullable<Text>,
        enrollment_token_id -> Nullable<Text>,
        created_at -> Timestamp,
        ade_udid -> Nullable<Text>,
        udid -> Nullable<Text>,
    }
}

diesel::table! {
    commands (command_uuid) {
        command_uuid -> Text,
        request_type -> Text,
        body -> Binary,
        priority -> Integer,
        source -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        assignment_id -> Nullable<Text>,
        item_key -> Nullable<Text>,
        action -> Nullable<Text>,
        item_version -> Nullable<Text>,
    }
}

diesel::table! {
    command_queue (device_id, command_uuid) {
        device_id -> Text,
        command_uuid -> Text,
        status -> Text,
        priority -> Integer,
        attempts -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        answered_at -> Nullable<Timestamp>,
        result -> Nullable<Binary>,
        error_chain -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor -> Text,
        action -> Text,
        object_type -> Text,
        object_id -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        school_id -> Nullable<Text>,
        summary -> Text,
    }
}

diesel::table! {
    enrollment_tokens (id) {
        id -> Text,
        token -> Text,
        tenant_id -> Text,
        school_id -> Text,
        class_id -> Nullable<Text>,
        group_id -> Nullable<Text>,
        description -> Text,
        max_uses -> Nullable<Integer>,
        uses -> Integer,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        kind -> Text,
        token_sealed -> Nullable<Binary>,
    }
}

diesel::table! {
    scep_challenges (challenge_sha256) {
        challenge_sha256 -> Text,
        token_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        udid -> Nullable<Text>,
        renews_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    push_certificates (tenant_id) {
        tenant_id -> Text,
        topic -> Text,
        not_after -> Timestamp,
        cert_pem -> Text,
        key_sealed -> Binary,
        uploaded_by -> Nullable<Text>,
        uploaded_at -> Timestamp,
    }
}

diesel::table! {
    push_certificate_requests (tenant_id) {
        tenant_id -> Text,
        key_sealed -> Binary,
        csr_pem -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    classes (id) {
        id -> Text,
        school_id -> Text,
        name -> Text,
        school_year -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    class_teachers (class_id, user_id) {
        class_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    class_devices (class_id, device_id) {
        class_id -> Text,
        device_id -> Text,
    }
}

diesel::table! {
    device_groups (id) {
        id -> Text,
        school_id -> Text,
        name -> Text,
        kind -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    group_devices (group_id, device_id) {
        group_id -> Text,
        device_id -> Text,
    }
}

diesel::table! {
    apps (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        name -> Text,
        bundle_id -> Text,
        adam_id -> Nullable<Text>,
        manifest_url -> Nullable<Text>,
        management_flags -> Integer,
        removable -> Bool,
        configuration -> Nullable<Text>,
        licensed -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    profiles (id) {
        id -> Text,
        tenant_id -> Nullable<Text>,
        school_id -> Nullable<Text>,
        name -> Text,
        identifier -> Text,
        payload -> Binary,
        template -> Nullable<Text>,
        payload_types -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        payload_uuid -> Nullable<Text>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    closures (id) {
        id -> Text,
        tenant_id -> Text,
        school_id -> Nullable<Text>,
        name -> Text,
        from_date -> Text,
        to_date -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    assignments (id) {
        id -> Text,
        tenant_id -> Text,
        school_id -> Nullable<Text>,
        item_kind -> Text,
        item_id -> Text,
        target_kind -> Text,
        target_id -> Text,
        schedule -> Text,
        source -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        lesson_request_id -> Nullable<Text>,
    }
}

diesel::table! {
    vpp_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        location_name -> Text,
        org_name -> Text,
        token_sealed -> Binary,
        expires_at -> Timestamp,
        status -> Text,
        last_error -> Nullable<Text>,
        last_sync_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        u_id -> Nullable<Text>,
    }
}

diesel::table! {
    vpp_assets (token_id, adam_id) {
        token_id -> Text,
        adam_id -> Text,
        pricing_param -> Text,
        total -> Integer,
        assigned -> Integer,
        available -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    vpp_licences (token_id, adam_id, serial_number) {
        token_id -> Text,
        adam_id -> Text,
        serial_number -> Text,
        release_after -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ade_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        cert_pem -> Text,
        key_sealed -> Binary,
        tokens_sealed -> Nullable<Binary>,
        expires_at -> Nullable<Timestamp>,
        server_name -> Nullable<Text>,
        sync_cursor -> Nullable<Text>,
        status -> Text,
        last_error -> Nullable<Text>,
        last_sync_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        sync_claimed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    job_leases (name) {
        name -> Text,
        holder -> Nullable<Text>,
        held_until -> Timestamp,
        last_run -> Nullable<Timestamp>,
    }
}

diesel::table! {
    shared_secrets (name) {
        name -> Text,
        value_sealed -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    secret_migrations (name) {
        name -> Text,
        done_at -> Timestamp,
    }
}

diesel::table! {
    ade_machine_infos (body_sha256) {
        body_sha256 -> Text,
        udid -> Text,
        serial_number -> Text,
        challenge_sha256 -> Text,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    ade_devices (serial_number) {
        serial_number -> Text,
        token_id -> Text,
        tenant_id -> Text,
        model -> Nullable<Text>,
        description -> Nullable<Text>,
        color -> Nullable<Text>,
        asset_tag -> Nullable<Text>,
        profile_status -> Nullable<Text>,
        profile_uuid -> Nullable<Text>,
        assigned_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        order_number -> Nullable<Text>,
        os -> Nullable<Text>,
        device_family -> Nullable<Text>,
        profile_assigned_at -> Nullable<Timestamp>,
        profile_pushed_at -> Nullable<Timestamp>,
        profile_error -> Nullable<Text>,
    }
}

diesel::table! {
    ade_rules (id) {
        id -> Text,
        tenant_id -> Text,
        school_id -> Text,
        class_id -> Nullable<Text>,
        group_id -> Nullable<Text>,
        order_number -> Nullable<Text>,
        serials -> Nullable<Text>,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ade_profiles (school_id) {
        school_id -> Text,
        tenant_id -> Text,
        settings -> Text,
        revision -> Integer,
        release_timeout_minutes -> Integer,
        release_requires -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ade_profile_uploads (school_id, token_id) {
        school_id -> Text,
        token_id -> Text,
        revision -> Integer,
        profile_hash -> Text,
        profile_uuid -> Text,
        defined_at -> Timestamp,
    }
}

diesel::table! {
    device_setup (device_id) {
        device_id -> Text,
        serial_number -> Nullable<Text>,
        first_contact_at -> Timestamp,
        released_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        missing -> Nullable<Text>,
    }
}

diesel::table! {
    lesson_settings (school_id) {
        school_id -> Text,
        periods -> Text,
        min_notice_minutes -> Integer,
        max_duration_minutes -> Integer,
        lead_minutes -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    approved_apps (school_id, app_id) {
        school_id -> Text,
        app_id -> Text,
    }
}

diesel::table! {
    lesson_requests (id) {
        id -> Text,
        tenant_id -> Text,
        school_id -> Text,
        teacher_id -> Text,
        target_kind -> Text,
        target_id -> Text,
        app_ids -> Text,
        lesson_date -> Text,
        start_time -> Text,
        end_time -> Text,
        repeat_until -> Nullable<Text>,
        after_lesson -> Text,
        note -> Nullable<Text>,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        reason -> Nullable<Text>,
        notified_start -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    device_apps (device_id, bundle_id) {
        device_id -> Text,
        bundle_id -> Text,
        name -> Nullable<Text>,
        version -> Nullable<Text>,
        status -> Text,
        managed -> Bool,
        by_tafel -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    device_profiles (device_id, identifier) {
        device_id -> Text,
        identifier -> Text,
        uuid -> Nullable<Text>,
        name -> Nullable<Text>,
        managed -> Bool,
        by_tafel -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(schools -> tenants (tenant_id));
diesel::joinable!(vpp_assets -> vpp_tokens (token_id));
diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        event -> Text,
        url -> Text,
        payload -> Text,
        tenant_id -> Nullable<Text>,
        school_id -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        status -> Text,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(classes -> schools (school_id));
diesel::joinable!(class_teachers -> classes (class_id));
diesel::joinable!(class_teachers -> users (user_id));
diesel::joinable!(class_devices -> classes (class_id));
diesel::joinable!(class_devices -> devices (device_id));
diesel::joinable!(device_groups -> schools (school_id));
diesel::joinable!(group_devices -> device_groups (group_id));
diesel::joinable!(group_devices -> devices (device_id));
diesel::joinable!(enrollment_tokens -> schools (school_id));
diesel::joinable!(scep_challenges -> enrollment_tokens (token_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(command_queue -> devices (device_id));
diesel::joinable!(command_queue -> commands (command_uuid));

diesel::table! {
    app_icons (adam_id) {
        adam_id -> Text,
        content_type -> Text,
        data -> Binary,
        fetched_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (scope, idem_key) {
        scope -> Text,
        idem_key -> Text,
        request_hash -> Text,
        status -> Nullable<Integer>,
        content_type -> Nullable<Text>,
        body -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    app_icons,
    idempotency_keys,
    tenants,
    schools,
    users,
    api_tokens,
    devices,
    device_certificates,
    commands,
    command_queue,
    audit_log,
    enrollment_tokens,
    scep_challenges,
    push_certificates,
    push_certificate_requests,
    classes,
    class_teachers,
    class_devices,
    device_groups,
    group_devices,
    apps,
    profiles,
    closures,
    assignments,
    device_apps,
    device_profiles,
    device_inventory,
    lesson_settings,
    ade_tokens,
    ade_devices,
    ade_machine_infos,
    secret_migrations,
    job_leases,
    shared_secrets,
    ade_rules,
    ade_profiles,
    ade_profile_uploads,
    device_setup,
    vpp_tokens,
    vpp_assets,
    vpp_licences,
    approved_apps,
    lesson_requests,
    webhook_deliveries,
);
