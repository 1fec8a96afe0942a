DROP TABLE ade_machine_infos;
