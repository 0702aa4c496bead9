from django.urls import path

from projects import views

urlpatterns = [
    path("", views.project_list, name="projects"),
    path("<id:project_id>/", views.project_detail, name="project-detail"),
]
