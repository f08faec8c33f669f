"""What dunning decides, pure: the schedule, banners, access, the preview."""
