DROP TABLE app_icons;
