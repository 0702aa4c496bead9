from django.urls import path

from runs import views

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("status/bar/", views.status_fragment, name="status-bar"),
    path("runs/new/", views.run_create, name="run-new"),
    path("schedules/", views.schedule_list, name="schedules"),
    path("schedules/<id:schedule_id>/", views.schedule_edit, name="schedule-edit"),
    path("schedules/<id:schedule_id>/toggle/", views.schedule_toggle, name="schedule-toggle"),
    path("runs/<id:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<id:run_id>/events/", views.run_events, name="run-events"),
    path("runs/<id:run_id>/events/older/", views.run_events_older, name="run-events-older"),
    path("runs/<id:run_id>/directive/", views.run_directive, name="run-directive"),
    path("runs/<id:run_id>/<str:decision>/review/", views.run_review, name="run-review"),
    path("runs/<id:run_id>/<str:action>/", views.run_action, name="run-action"),
]
